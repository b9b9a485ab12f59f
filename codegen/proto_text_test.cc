// Parses the .proto text that lpcc emitted with protobuf's own .proto parser
// and checks that it describes exactly the messages and services compiled
// into the generated C++ (so a stock gRPC client built from the .proto talks
// to lpc servers), including the gRPC method paths.
#include <cstdlib>
#include <string>

#include "codegen/testdata/test_service.lpc.h"
#include "codegen/testdata/test_streams.lpc.h"
#include "google/protobuf/compiler/importer.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/util/message_differencer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lpc::codegen {
namespace {

namespace pb = google::protobuf;

class Errors : public pb::compiler::MultiFileErrorCollector {
 public:
  void AddError(const std::string& filename, int line, int column,
                const std::string& message) override {
    text += filename + ":" + std::to_string(line) + ":" +
            std::to_string(column) + ": " + message + "\n";
  }
  std::string text;
};

void ExpectSameFile(const std::string& proto_path,
                    const pb::FileDescriptor* compiled) {
  pb::compiler::DiskSourceTree tree;
  tree.MapPath("", ".");  // Runfiles root = workspace root.
  Errors errors;
  pb::compiler::Importer importer(&tree, &errors);
  const pb::FileDescriptor* parsed = importer.Import(proto_path);
  ASSERT_NE(parsed, nullptr) << errors.text;
  EXPECT_EQ(errors.text, "");

  pb::FileDescriptorProto from_text;
  pb::FileDescriptorProto from_cpp;
  parsed->CopyTo(&from_text);
  compiled->CopyTo(&from_cpp);
  std::string diff;
  pb::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(from_cpp, from_text)) << diff;
}

TEST(ProtoTextTest, MatchesTheCompiledDescriptors) {
  ExpectSameFile("codegen/testdata/test_service.proto",
                 test::Record::descriptor()->file());
  ExpectSameFile("codegen/testdata/test_types.proto",
                 testtypes::Tag::descriptor()->file());
  ExpectSameFile("codegen/testdata/test_streams.proto",
                 streams::Change::descriptor()->file());
}

// Streaming methods are gRPC streaming RPCs whose stream side is the
// stream<T>'s struct itself, and their kinds agree with the descriptor.
TEST(ProtoTextTest, StreamingMethodsAreGrpcStreamingRpcs) {
  const pb::ServiceDescriptor* service =
      streams::Change::descriptor()->file()->FindServiceByName("Streams");
  ASSERT_NE(service, nullptr);
  const pb::MethodDescriptor* watch = service->FindMethodByName("Watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_FALSE(watch->client_streaming());
  EXPECT_TRUE(watch->server_streaming());
  EXPECT_EQ(watch->input_type()->full_name(), "lpc.codegen.streams.WatchRequest");
  EXPECT_EQ(watch->output_type()->full_name(), "lpc.codegen.streams.Change");
  const pb::MethodDescriptor* upload = service->FindMethodByName("Upload");
  ASSERT_NE(upload, nullptr);
  EXPECT_TRUE(upload->client_streaming());
  EXPECT_FALSE(upload->server_streaming());
  EXPECT_EQ(upload->input_type()->full_name(), "lpc.codegen.streams.Sample");
  EXPECT_EQ(upload->output_type()->full_name(),
            "lpc.codegen.streams.UploadResponse");
  const pb::MethodDescriptor* process = service->FindMethodByName("Process");
  ASSERT_NE(process, nullptr);
  EXPECT_TRUE(process->client_streaming());
  EXPECT_TRUE(process->server_streaming());
  EXPECT_EQ(process->input_type()->full_name(), "lpc.codegen.streams.Frame");
  EXPECT_EQ(process->output_type()->full_name(), "lpc.codegen.streams.Frame");
  EXPECT_EQ(service->FindMethodByName("Tags")->output_type()->full_name(),
            "lpc.codegen.testtypes.Tag");
  // No request message for a client stream, no response for a server one.
  const pb::FileDescriptor* file = service->file();
  EXPECT_EQ(file->FindMessageTypeByName("UploadRequest"), nullptr);
  EXPECT_EQ(file->FindMessageTypeByName("WatchResponse"), nullptr);
  EXPECT_EQ(file->FindMessageTypeByName("ProcessRequest"), nullptr);
  EXPECT_EQ(file->FindMessageTypeByName("ProcessResponse"), nullptr);
  const InterfaceDescriptor& iface = streams::StreamsClient::Descriptor();
  for (const MethodDescriptor& m : iface.methods) {
    const pb::MethodDescriptor* rpc =
        service->FindMethodByName(std::string(m.name));
    ASSERT_NE(rpc, nullptr) << m.name;
    EXPECT_EQ(rpc->client_streaming(), m.client_streams()) << m.name;
    EXPECT_EQ(rpc->server_streaming(), m.server_streams()) << m.name;
  }
}

TEST(ProtoTextTest, ServicesCarryTheGrpcPaths) {
  const pb::FileDescriptor* file = test::Record::descriptor()->file();
  const pb::ServiceDescriptor* service = file->FindServiceByName("Tester");
  ASSERT_NE(service, nullptr);
  const InterfaceDescriptor& iface = test::TesterClient::Descriptor();
  EXPECT_EQ(service->full_name(), std::string(iface.full_name));
  ASSERT_EQ(service->method_count(), static_cast<int>(iface.methods.size()));
  for (const MethodDescriptor& m : iface.methods) {
    const pb::MethodDescriptor* rpc =
        service->FindMethodByName(std::string(m.name));
    ASSERT_NE(rpc, nullptr) << m.name;
    EXPECT_EQ("/" + service->full_name() + "/" + rpc->name(),
              iface.MethodPath(m));
    EXPECT_EQ(rpc->input_type()->name(), std::string(m.name) + "Request");
    EXPECT_EQ(rpc->output_type()->name(), std::string(m.name) + "Response");
  }
  // Oneway methods still have an (empty) response message.
  EXPECT_EQ(service->FindMethodByName("Notify")->output_type()->field_count(), 0);
  // Optional scalars use proto3 optional; optional structs are plain fields.
  const pb::Descriptor* record = test::Record::descriptor();
  EXPECT_TRUE(record->FindFieldByName("maybe")->has_optional_keyword());
  EXPECT_FALSE(record->FindFieldByName("maybe_inner")->has_optional_keyword());
  EXPECT_TRUE(record->FindFieldByName("by_name")->is_map());
  EXPECT_EQ(record->FindFieldByName("inner")->number(), 5);
}

}  // namespace
}  // namespace lpc::codegen
