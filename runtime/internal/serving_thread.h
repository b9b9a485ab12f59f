// ServingThreadScope: marks the running thread as one a server transport
// runs or joins (a handler, a transport's worker, timer or I/O thread).
//
// Server::Shutdown called on such a thread must not wait for the
// transports' shutdown: that shutdown waits for the handler the thread is
// running and then joins the thread itself. Server::Shutdown therefore asks
// OnServingThread() and, when true, hands the work to a thread of its own
// (runtime/server.h says what the caller sees).
//
// Scopes nest; each thread has its own count.
#ifndef LPC_RUNTIME_INTERNAL_SERVING_THREAD_H_
#define LPC_RUNTIME_INTERNAL_SERVING_THREAD_H_

namespace lpc::internal {

inline thread_local int serving_thread_depth = 0;

class ServingThreadScope {
 public:
  ServingThreadScope() { ++serving_thread_depth; }
  ~ServingThreadScope() { --serving_thread_depth; }
  ServingThreadScope(const ServingThreadScope&) = delete;
  ServingThreadScope& operator=(const ServingThreadScope&) = delete;
};

// Whether a ServingThreadScope is open on this thread.
inline bool OnServingThread() { return serving_thread_depth > 0; }

}  // namespace lpc::internal

#endif  // LPC_RUNTIME_INTERNAL_SERVING_THREAD_H_
