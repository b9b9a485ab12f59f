// See raw_client_testing.h.
#include "transports/grpc/raw_client_testing.h"

#include <chrono>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>

namespace lpc::grpc_test {

namespace {

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(10);
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) out.append(s.begin(), s.end());
  return out;
}

}  // namespace

std::shared_ptr<grpc::Channel> RawChannel(const std::string& target) {
  return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
}

grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& path, const std::string& request,
                      std::string* reply,
                      const std::map<std::string, std::string>& metadata) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline());
  for (const auto& [key, value] : metadata) ctx.AddMetadata(key, value);
  grpc::CompletionQueue cq;
  const grpc::ByteBuffer request_buffer = ToBuffer(request);
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      grpc::GenericStub(channel).PrepareUnaryCall(&ctx, path, request_buffer,
                                                  &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, &cq);
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok) && tag != &cq) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (status.ok() && reply != nullptr) *reply = FromBuffer(response);
  return status;
}

RawStream::RawStream(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& path, const std::string& request) {
  ctx_.set_deadline(Deadline());
  call_ = grpc::GenericStub(channel).PrepareCall(&ctx_, path, &cq_);
  call_->StartCall(this);
  if (!Wait(this)) return;
  call_->Write(ToBuffer(request), this);
  if (!Wait(this)) return;
  call_->WritesDone(this);
  Wait(this);
}

RawStream::~RawStream() {
  cq_.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
  }
}

std::optional<std::string> RawStream::Read() {
  grpc::ByteBuffer buffer;
  call_->Read(&buffer, this);
  if (!Wait(this)) return std::nullopt;
  return FromBuffer(buffer);
}

grpc::Status RawStream::Finish() {
  grpc::Status status;
  call_->Finish(&status, this);
  Wait(this);
  return status;
}

bool RawStream::Wait(void* tag) {
  void* got = nullptr;
  bool ok = false;
  while (cq_.Next(&got, &ok)) {
    if (got == tag) return ok;
  }
  return false;
}

std::string HealthRequest(const std::string& service) {
  std::string request;
  if (service.empty()) return request;  // proto3: the default is not sent.
  request.push_back(0x0a);  // Field 1, length-delimited.
  request.push_back(static_cast<char>(service.size()));  // < 128 here.
  return request + service;
}

int HealthStatus(const std::string& response) {
  if (response.empty()) return 0;  // UNKNOWN, the default.
  if (response.size() != 2 || response[0] != 0x08 || response[1] < 0) {
    return -1;
  }
  return response[1];
}

}  // namespace lpc::grpc_test
