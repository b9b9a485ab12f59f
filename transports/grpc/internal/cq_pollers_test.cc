// CqPollers on a real completion queue, with events posted by grpc::Alarm:
// handlers run where their event arrived, blocking handlers never stall the
// queue (a thread is woken or started), and once they return at most
// min_threads threads poll while the others wait as spares.
#include "transports/grpc/internal/cq_pollers.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <grpcpp/alarm.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace lpc::grpc_transport {
namespace {

// Runs `fn` on the poller thread that takes it; posted at once by an Alarm.
class Event final : public CqEvent {
 public:
  explicit Event(std::function<void(bool)> fn) : fn_(std::move(fn)) {}
  void Post(grpc::ServerCompletionQueue* cq) {
    HandToQueue(this);
    alarm_.Set(cq, gpr_now(GPR_CLOCK_MONOTONIC), this);
  }
  void OnEvent(bool ok) override { fn_(ok); }

 private:
  std::function<void(bool)> fn_;
  grpc::Alarm alarm_;
};

// Latch with std:: primitives, which ThreadSanitizer sees
// (Debian's prebuilt Abseil is not instrumented).
class Latch {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }
  bool WaitFor(absl::Duration d) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(d),
                        [&] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// Polls `done` every millisecond for up to 10 s (a bound, not a wait for
// something to happen by itself: each condition follows from the events
// the test posted).
bool Eventually(const std::function<bool()>& done) {
  const absl::Time limit = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > limit) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class CqPollersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    cq_ = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    pollers_ = std::make_unique<CqPollers>(
        cq_.get(), CqPollers::Options{/*min_threads=*/2, /*max_handlers=*/16,
                                      /*max_queued=*/64});
    pollers_->Start();
  }

  void TearDown() override {
    pollers_->Stop();
    server_->Shutdown();
    cq_->Shutdown();
    pollers_->Join();
    EXPECT_EQ(pollers_->thread_counts().threads, 0);
  }

  // Posts `n` events whose handlers (admitted) block until `release`.
  void StartBlockingHandlers(int n, Latch* release) {
    for (int i = 0; i < n; ++i) {
      events_.push_back(std::make_unique<Event>([this, release](bool ok) {
        if (!ok) return;
        CqPollers::Task task = [this, release](bool run) {
          if (!run) return;
          running_.fetch_add(1);
          release->Wait();
          running_.fetch_sub(1);
        };
        absl::StatusOr<CqPollers::Admission> a = pollers_->Admit(&task);
        ASSERT_TRUE(a.ok());
        if (*a == CqPollers::Admission::kRunHere) {
          pollers_->RunAdmitted(std::move(task));
        }
      }));
      events_.back()->Post(cq_.get());
    }
  }

  // Posts `n` events one after the other, each once the previous ran;
  // returns how many threads ran them, or -1 if one was not taken within
  // 10 s (the queue stalled).
  int ThreadsOfSequentialEvents(int n) {
    std::set<std::thread::id> threads;
    for (int i = 0; i < n; ++i) {
      auto ran = std::make_shared<Latch>();
      auto where = std::make_shared<std::thread::id>();
      events_.push_back(std::make_unique<Event>([ran, where](bool) {
        *where = std::this_thread::get_id();
        ran->Notify();
      }));
      events_.back()->Post(cq_.get());
      if (!ran->WaitFor(absl::Seconds(10))) return -1;
      threads.insert(*where);
    }
    return static_cast<int>(threads.size());
  }

  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CqPollers> pollers_;
  std::vector<std::unique_ptr<Event>> events_;
  std::atomic<int> running_{0};
};

TEST_F(CqPollersTest, StartsMinThreadsThatPoll) {
  ASSERT_TRUE(Eventually([&] { return pollers_->thread_counts().polling == 2; }));
  CqPollers::ThreadCounts c = pollers_->thread_counts();
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.spares, 0);
  const int used = ThreadsOfSequentialEvents(50);
  EXPECT_GE(used, 1);
  EXPECT_LE(used, 2);
}

TEST_F(CqPollersTest, BlockingHandlersNeverStallTheQueue) {
  Latch release;
  StartBlockingHandlers(6, &release);
  // All six run at once: a thread started for each that left none polling.
  ASSERT_TRUE(Eventually([&] { return running_.load() == 6; }));
  EXPECT_GE(pollers_->thread_counts().threads, 7);
  // Some thread still takes other events.
  EXPECT_GE(ThreadsOfSequentialEvents(5), 1);
  release.Notify();
  ASSERT_TRUE(Eventually([&] { return running_.load() == 0; }));
}

TEST_F(CqPollersTest, ThreadsBeyondMinThreadsWaitAsSparesAndAreWokenWhenNeeded) {
  Latch first;
  StartBlockingHandlers(6, &first);
  ASSERT_TRUE(Eventually([&] { return running_.load() == 6; }));
  first.Notify();
  // Each thread back from its handler polls only while fewer than
  // min_threads do; the others wait.
  const int threads = pollers_->thread_counts().threads;
  ASSERT_TRUE(Eventually([&] {
    CqPollers::ThreadCounts c = pollers_->thread_counts();
    return c.spares == threads - 2 && c.polling == 2;
  }));
  // Later events reach only the two polling threads.
  const int used = ThreadsOfSequentialEvents(100);
  EXPECT_GE(used, 1);
  EXPECT_LE(used, 2);
  EXPECT_EQ(pollers_->thread_counts().threads, threads);

  // Blocking handlers wake the spares rather than starting threads.
  Latch second;
  StartBlockingHandlers(4, &second);
  ASSERT_TRUE(Eventually([&] { return running_.load() == 4; }));
  EXPECT_EQ(pollers_->thread_counts().threads, threads);
  // Four run on the two pollers and two spares, and a third spare polls.
  EXPECT_LE(pollers_->thread_counts().spares, threads - 5);
  EXPECT_GE(ThreadsOfSequentialEvents(5), 1);
  second.Notify();
  ASSERT_TRUE(Eventually([&] { return running_.load() == 0; }));
}

}  // namespace
}  // namespace lpc::grpc_transport
