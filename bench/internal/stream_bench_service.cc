// See stream_bench_service.h.
#include "bench/internal/stream_bench_service.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "runtime/inprocess.h"
#include "runtime/service.h"
#include "transports/grpc/grpc_channel.h"
#include "transports/grpc/grpc_server.h"
#include "transports/local/local_transport.h"

namespace lpc::bench::stream_bench {
namespace {

constexpr char kPortName[] = "streams";

constexpr MethodDescriptor kMethods[] = {
    {"Down", 1, false, MethodKind::kServerStreaming},
    {"Up", 2, false, MethodKind::kClientStreaming},
};

const InterfaceDescriptor kInterface{
    "lpc.bench.Streams", "5c1e7a90-3b2d-4f68-a1c4-9e8d7f6b5a43", {1, 0},
    absl::Span<const MethodDescriptor>(kMethods)};

// Drives an asynchronous loop without recursion: Step() starts one
// operation, whose callback calls Completed(go_on). When the callback runs
// before Step returns, the loop goes on in Run; otherwise in the callback.
// Done() runs once, when an operation said not to go on.
class Driver : public std::enable_shared_from_this<Driver> {
 public:
  virtual ~Driver() = default;

  void Run() {
    while (true) {
      phase_.store(kInStep);
      Step();
      int expected = kInStep;
      if (phase_.compare_exchange_strong(expected, kIdle)) return;
      if (!go_on_.load()) return Done();
    }
  }

 protected:
  virtual void Step() = 0;
  virtual void Done() = 0;

  void Completed(bool go_on) {
    go_on_.store(go_on);
    int expected = kInStep;
    if (phase_.compare_exchange_strong(expected, kCompletedInStep)) return;
    if (!go_on) return Done();
    Run();
  }

 private:
  enum { kIdle, kInStep, kCompletedInStep };
  std::atomic<int> phase_{kIdle};
  std::atomic<bool> go_on_{true};
};

// Server, Down: writes stamped messages until a write fails (the client
// cancelled).
class DownWriter final : public Driver {
 public:
  DownWriter(std::shared_ptr<ServerStream> call, size_t payload)
      : call_(std::move(call)), buf_(payload, 'd') {}

 private:
  void Step() override {
    Stamp(buf_.data(), buf_.size(), seq_++);
    auto self = std::static_pointer_cast<DownWriter>(shared_from_this());
    call_->Write(buf_, [self](absl::Status s) {
      if (!s.ok()) self->status_ = s;
      self->Completed(s.ok());
    });
  }
  void Done() override { call_->Finish(status_); }

  const std::shared_ptr<ServerStream> call_;
  std::string buf_;
  uint64_t seq_ = 0;
  absl::Status status_;  // Written before Completed(false).
};

// Server, Up: counts messages until the half-close, replies the count.
class UpReader final : public Driver {
 public:
  explicit UpReader(std::shared_ptr<ServerStream> call)
      : call_(std::move(call)) {}

 private:
  void Step() override {
    auto self = std::static_pointer_cast<UpReader>(shared_from_this());
    call_->Read([self](absl::StatusOr<std::optional<std::string>> r) {
      if (!r.ok()) {
        self->status_ = r.status();
      } else if (!r->has_value()) {
        self->ended_ = true;
      } else if (!CheckStamp((*r)->data(), (*r)->size(), self->count_)) {
        self->status_ = absl::DataLossError("message out of order");
      } else {
        ++self->count_;
        return self->Completed(true);
      }
      self->Completed(false);
    });
  }
  void Done() override {
    if (!ended_) return call_->Finish(status_);
    std::shared_ptr<ServerStream> call = call_;
    call->Write(absl::StrCat(count_), [call](absl::Status s) {
      call->Finish(s);
    });
  }

  const std::shared_ptr<ServerStream> call_;
  uint64_t count_ = 0;
  bool ended_ = false;
  absl::Status status_;
};

class StreamsService final : public Service {
 public:
  const InterfaceDescriptor& descriptor() const override { return kInterface; }
  absl::Status Dispatch(uint32_t, CallContext&, std::string_view,
                        std::string*) override {
    return absl::UnimplementedError("every method streams");
  }
  bool UsesStartCall(uint32_t) const override { return true; }
  bool StartCallBlocks(uint32_t) const override { return false; }
  void StartCall(uint32_t method_id,
                 std::shared_ptr<ServerStream> call) override {
    if (method_id == 2) return std::make_shared<UpReader>(call)->Run();
    ServerStream* raw = call.get();
    raw->Read([call = std::move(call)](
                  absl::StatusOr<std::optional<std::string>> r) {
      size_t payload = 0;
      if (!r.ok() || !r->has_value() || !absl::SimpleAtoi(**r, &payload) ||
          payload < 16 || payload > (size_t{64} << 20)) {
        return call->Finish(absl::InvalidArgumentError("Down wants a size"));
      }
      std::make_shared<DownWriter>(call, payload)->Run();
    });
  }
};

// Client loops: they signal `finished` when done.
struct Finished {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  absl::Status status;

  void Signal(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    status = std::move(s);
    cv.notify_all();
  }
  absl::Status Wait(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_until(lock, absl::ToChronoTime(absl::Now() + timeout),
                       [&] { return done; })) {
      return absl::DeadlineExceededError("the stream stopped moving");
    }
    return status;
  }
};

class ClientReader final : public Driver {
 public:
  ClientReader(ClientStream& stream, uint64_t end_ns)
      : stream_(stream), end_ns_(end_ns) {}
  Finished finished;
  int64_t count = 0;

 private:
  void Step() override {
    auto self = std::static_pointer_cast<ClientReader>(shared_from_this());
    stream_.Read([self](absl::StatusOr<std::optional<std::string>> r) {
      if (!r.ok() || !r->has_value()) {
        self->status_ = r.ok() ? absl::InternalError("the stream ended")
                               : r.status();
        return self->Completed(false);
      }
      if (!CheckStamp((*r)->data(), (*r)->size(), self->count)) {
        self->status_ = absl::DataLossError("message out of order");
        return self->Completed(false);
      }
      ++self->count;
      self->Completed(NowNs() < self->end_ns_);
    });
  }
  void Done() override { finished.Signal(status_); }

  ClientStream& stream_;
  const uint64_t end_ns_;
  absl::Status status_;
};

class ClientWriter final : public Driver {
 public:
  ClientWriter(ClientStream& stream, size_t payload, uint64_t end_ns)
      : stream_(stream), buf_(payload, 'u'), end_ns_(end_ns) {}
  Finished finished;
  int64_t count = 0;

 private:
  void Step() override {
    Stamp(buf_.data(), buf_.size(), static_cast<uint64_t>(count));
    auto self = std::static_pointer_cast<ClientWriter>(shared_from_this());
    stream_.Write(buf_, [self](absl::Status s) {
      if (!s.ok()) {
        self->status_ = s;
        return self->Completed(false);
      }
      ++self->count;
      self->Completed(NowNs() < self->end_ns_);
    });
  }
  void Done() override { finished.Signal(status_); }

  ClientStream& stream_;
  std::string buf_;
  const uint64_t end_ns_;
  absl::Status status_;
};

absl::StatusOr<std::optional<std::string>> ReadOnce(ClientStream& stream) {
  struct Box {
    Finished f;
    absl::StatusOr<std::optional<std::string>> value;
  };
  auto box = std::make_shared<Box>();
  stream.Read([box](absl::StatusOr<std::optional<std::string>> r) {
    box->value = std::move(r);
    box->f.Signal(absl::OkStatus());
  });
  absl::Status s = box->f.Wait(absl::Seconds(30));
  if (!s.ok()) return s;
  return std::move(box->value);
}

absl::Status WriteOnce(ClientStream& stream, std::string message) {
  auto f = std::make_shared<Finished>();
  stream.Write(std::move(message), [f](absl::Status s) { f->Signal(s); });
  return f->Wait(absl::Seconds(30));
}

absl::Duration Seconds(double s) { return absl::Microseconds(s * 1e6); }

}  // namespace

std::shared_ptr<ClientStream> Open(Channel& channel, Direction direction,
                                   CallContext* ctx) {
  return channel.OpenStream(kInterface,
                            kMethods[direction == Direction::kDown ? 0 : 1],
                            ctx);
}

absl::StatusOr<Counted> ReadFor(ClientStream& stream, size_t payload,
                                double seconds) {
  absl::Status s = WriteOnce(stream, absl::StrCat(payload));
  if (!s.ok()) return s;
  stream.WritesDone();
  const uint64_t start = NowNs();
  auto reader = std::make_shared<ClientReader>(
      stream, start + static_cast<uint64_t>(seconds * 1e9));
  reader->Run();
  s = reader->finished.Wait(Seconds(seconds) + absl::Seconds(30));
  const uint64_t end = NowNs();
  if (!s.ok()) return s;
  stream.context().Cancel();  // Stops the server's writer.
  return Counted{reader->count, (end - start) / 1e9};
}

absl::StatusOr<Counted> WriteFor(ClientStream& stream, size_t payload,
                                 double seconds) {
  const uint64_t start = NowNs();
  auto writer = std::make_shared<ClientWriter>(
      stream, payload, start + static_cast<uint64_t>(seconds * 1e9));
  writer->Run();
  absl::Status s = writer->finished.Wait(Seconds(seconds) + absl::Seconds(30));
  if (!s.ok()) return s;
  stream.WritesDone();
  absl::StatusOr<std::optional<std::string>> reply = ReadOnce(stream);
  const uint64_t end = NowNs();
  if (!reply.ok()) return reply.status();
  int64_t counted = -1;
  if (!reply->has_value() || !absl::SimpleAtoi(**reply, &counted) ||
      counted != writer->count) {
    return absl::DataLossError(absl::StrCat(
        "the server counted ", reply->value_or("nothing"), " of ",
        writer->count, " messages"));
  }
  return Counted{counted, (end - start) / 1e9};
}

ServerProcess::ServerProcess() = default;

ServerProcess::~ServerProcess() { Stop(); }

namespace {

absl::Status AddTransport(Server& server, const std::string& transport,
                          const std::string& dir) {
  if (transport == "local") {
    local::LocalPortOptions port;
    port.runtime_dir = dir;
    auto t = local::MakeLocalServerTransport(kPortName, port);
    return t.ok() ? server.AddTransport(std::move(*t)) : t.status();
  }
  GrpcServerOptions grpc;
  grpc.listen_addresses = {transport == "grpc-unix"
                               ? "unix:" + dir + "/streams.sock"
                               : std::string("127.0.0.1:0")};
  return server.AddTransport(MakeGrpcServerTransport(grpc));
}

int RunChild(const std::string& transport, const std::string& dir, int cpu,
             int ready_fd, int stop_fd, int timeout_s) {
  PinToCpu(cpu);
  ServerOptions options;
  options.shutdown_grace = absl::Seconds(1);
  Server server(options);
  StreamsService service;
  absl::Status s = server.RegisterService(&service);
  if (s.ok()) s = AddTransport(server, transport, dir);
  if (s.ok()) s = server.Start();
  if (!s.ok()) {
    fprintf(stderr, "lpc_stream server: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::string target = server.targets().at(0);
  const uint32_t len = static_cast<uint32_t>(target.size());
  if (!WriteFull(ready_fd, &len, sizeof(len)) ||
      !WriteFull(ready_fd, target.data(), len)) {
    return 1;
  }
  close(ready_fd);
  char byte;
  // EOF (the parent closed the pipe) or the timeout: either way, stop.
  ReadFullTimeout(stop_fd, &byte, 1, timeout_s * 1000);
  server.Shutdown();
  return 0;
}

}  // namespace

bool ServerProcess::Start(const std::string& transport, int cpu,
                          int timeout_s) {
  transport_ = transport;
  if (transport == "inprocess") {
    service_ = std::make_unique<StreamsService>();
    server_ = std::make_unique<Server>();
    auto t = std::make_unique<InProcessTransport>("lpc-stream-bench");
    InProcessTransport* raw = t.get();
    absl::Status s = server_->RegisterService(service_.get());
    if (s.ok()) s = server_->AddTransport(std::move(t));
    if (s.ok()) s = server_->Start();
    if (!s.ok()) {
      fprintf(stderr, "lpc_stream: %s\n", s.ToString().c_str());
      return false;
    }
    inprocess_channel_ = raw->NewChannel();
    return true;
  }
  dir_ = MakeTempDir("lpc-bench-stream-");
  int ready[2], stop[2];
  if (pipe(ready) != 0 || pipe(stop) != 0) return false;
  pid_ = ForkChild([&] {
    close(ready[0]);
    close(stop[1]);
    return RunChild(transport, dir_, cpu, ready[1], stop[0], timeout_s);
  });
  close(ready[1]);
  close(stop[0]);
  stop_fd_ = stop[1];
  if (pid_ < 0) return false;
  uint32_t len = 0;
  bool ok = ReadFullTimeout(ready[0], &len, sizeof(len), 20000) && len < 4096;
  if (ok) {
    target_.resize(len);
    ok = ReadFullTimeout(ready[0], target_.data(), len, 5000);
  }
  close(ready[0]);
  if (!ok) fprintf(stderr, "lpc_stream: the server did not start\n");
  return ok;
}

absl::StatusOr<std::shared_ptr<Channel>> ServerProcess::Connect() {
  if (transport_ == "inprocess") return inprocess_channel_;
  ChannelOptions options;
  if (transport_ == "local") {
    local::LocalChannelOptions local_options;
    local_options.runtime_dir = dir_;
    return local::CreateLocalChannel(kPortName, options, local_options);
  }
  // "grpc:<gRPC target>"
  auto channel = GrpcChannel::Create(target_.substr(5), options);
  if (!channel.ok()) return channel.status();
  return std::shared_ptr<Channel>(*std::move(channel));
}

void ServerProcess::Stop() {
  inprocess_channel_.reset();
  if (server_ != nullptr) {
    server_->Shutdown();
    server_.reset();
  }
  if (stop_fd_ >= 0) close(stop_fd_);
  stop_fd_ = -1;
  int status = 0;
  if (pid_ > 0 && !WaitChild(pid_, 5000, &status)) StopChild(pid_);
  pid_ = -1;
  if (!dir_.empty()) RemoveTempDir(dir_);
  dir_.clear();
}

}  // namespace lpc::bench::stream_bench
