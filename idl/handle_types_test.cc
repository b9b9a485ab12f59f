// The IDL's file descriptor type (docs/handles.md): kinds, placements, and
// which structs and methods carry a handle.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idl/frontend.h"

namespace lpc::idl {
namespace {

using ::testing::SizeIs;
using Kind = TypeRef::Kind;
using HK = TypeRef::HandleKind;

TEST(HandleTypes, KindsPlacesAndCarriers) {
  Frontend frontend({});
  frontend.AddVirtualFile("h.idl", R"(package h;
struct Plain { int32 x; }
struct Direct { handle<memfd, sealed> blob; string name; }
struct Deep { optional<Middle> m; }
struct Middle { sequence<Direct> items; }
struct Self { optional<Self> next; int32 handle; }
struct Seq { sequence<handle<pipe>> pipes; }
[uuid(6f1c2a34-9b7e-4d2a-8c11-0a1b2c3d4e70), version(1.0)]
interface Files {
  handle<file> Open([in] string path);
  void Give([in] handle<socket> s, [out] handle<pipe> p, [in, out] optional<handle> h);
  Deep Nest([in] Plain p);
  int32 None([in] int32 handle);
  [oneway] void Send([in] handle<memfd> m);
}
)");
  const File* file = frontend.Parse("h.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  ASSERT_THAT(file->structs, SizeIs(6));
  EXPECT_FALSE(file->structs[0]->carries_handle);
  EXPECT_TRUE(file->structs[1]->carries_handle);
  EXPECT_TRUE(file->structs[2]->carries_handle);  // Declared before Middle.
  EXPECT_TRUE(file->structs[3]->carries_handle);
  EXPECT_FALSE(file->structs[4]->carries_handle);
  EXPECT_TRUE(file->structs[5]->carries_handle);
  const TypeRef& blob = file->structs[1]->fields[0].type;
  EXPECT_EQ(blob.kind, Kind::kHandle);
  EXPECT_EQ(blob.handle_kind, HK::kSealedMemfd);
  EXPECT_EQ(TypeToString(blob), "handle<memfd, sealed>");
  EXPECT_EQ(file->structs[5]->fields[0].type.args[0].handle_kind, HK::kPipe);

  const auto& m = file->interfaces[0]->methods;
  ASSERT_THAT(m, SizeIs(5));
  EXPECT_EQ(m[0].return_type.handle_kind, HK::kFile);
  EXPECT_TRUE(m[0].carries_handles());
  EXPECT_FALSE(m[0].request_carries_handles());
  EXPECT_TRUE(m[0].reply_carries_handles());
  EXPECT_EQ(m[1].params[0].type.handle_kind, HK::kSocket);
  EXPECT_EQ(m[1].params[2].type.kind, Kind::kOptional);
  EXPECT_EQ(m[1].params[2].type.args[0].handle_kind, HK::kAny);
  EXPECT_TRUE(m[1].request_carries_handles());
  EXPECT_TRUE(m[1].reply_carries_handles());
  EXPECT_TRUE(m[2].carries_handles());  // Through Deep -> Middle -> Direct.
  EXPECT_FALSE(m[2].request_carries_handles());
  // `handle` stays a valid field and parameter name.
  EXPECT_FALSE(m[3].carries_handles());
  EXPECT_EQ(m[3].params[0].name, "handle");
  EXPECT_TRUE(m[4].request_carries_handles());
}

TEST(HandleTypes, ImportedCarriersAreSeen) {
  Frontend frontend({});
  frontend.AddVirtualFile("a.idl", "package a;\nstruct Fd { handle h; }\n");
  frontend.AddVirtualFile("b.idl", R"(package b;
import "a.idl";
struct Wrap { a.Fd fd; }
[uuid(6f1c2a34-9b7e-4d2a-8c11-0a1b2c3d4e71), version(1.0)]
interface I { stream<Wrap> Watch(); }
)");
  EXPECT_EQ(frontend.Parse("b.idl"), nullptr);
  EXPECT_THAT(frontend.FormatDiagnostics(),
              ::testing::HasSubstr("streaming method 'Watch' cannot carry a file "
                                   "descriptor ('b.Wrap' (it contains a handle))"));
}

}  // namespace
}  // namespace lpc::idl
