// The IDL's zero-copy byte payload, `buffer` (docs/zero-copy.md): where it
// is accepted, and that `buffer` stays an ordinary name outside a type. The
// refused placements are in tests/idl_errors/buffer_*.idl.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idl/frontend.h"

namespace lpc::idl {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using Kind = TypeRef::Kind;

TEST(BufferTypes, AcceptedPlacements) {
  Frontend frontend({});
  frontend.AddVirtualFile("b.idl", R"(package b;
struct Meta { int32 buffer; bytes data; }
[uuid(6f1c2a34-9b7e-4d2a-8c11-0a1b2c3d4e80), version(1.0)]
interface Frames {
  // One each way, beside ordinary parameters.
  buffer Invert([in] Meta meta, [in] buffer frame, [out] int32 sum);
  buffer Capture([in] uint32 size);
  void Store([in] buffer buffer);
  [oneway] void Show([in] buffer frame);
  // With a file descriptor in the same call.
  handle<pipe> Pipe([in] buffer frame, [in] handle fd);
  int32 buffer([in] int32 x);
  int32 Plain([in] bytes data);
}
)");
  const File* file = frontend.Parse("b.idl");
  ASSERT_NE(file, nullptr) << frontend.FormatDiagnostics();
  const auto& m = file->interfaces[0]->methods;
  ASSERT_THAT(m, SizeIs(7));

  EXPECT_EQ(m[0].return_type.kind, Kind::kBuffer);
  EXPECT_EQ(TypeToString(m[0].return_type), "buffer");
  EXPECT_EQ(m[0].return_type.loc.line, 6);
  EXPECT_EQ(m[0].return_type.loc.column, 3);
  EXPECT_EQ(m[0].params[1].type.kind, Kind::kBuffer);
  EXPECT_EQ(m[0].params[1].type.loc.column, 38);
  EXPECT_TRUE(m[0].returns_buffer());
  ASSERT_NE(m[0].buffer_param(), nullptr);
  EXPECT_EQ(m[0].buffer_param()->name, "frame");
  EXPECT_TRUE(m[0].carries_buffer());
  EXPECT_FALSE(m[0].carries_handles());

  EXPECT_TRUE(m[1].returns_buffer());
  EXPECT_EQ(m[1].buffer_param(), nullptr);

  // `buffer` is still a parameter, field and method name.
  EXPECT_FALSE(m[2].returns_buffer());
  ASSERT_NE(m[2].buffer_param(), nullptr);
  EXPECT_EQ(m[2].buffer_param()->name, "buffer");
  EXPECT_EQ(file->structs[0]->fields[0].name, "buffer");
  EXPECT_EQ(file->structs[0]->fields[0].type.kind, Kind::kInt32);
  EXPECT_EQ(m[5].name, "buffer");
  EXPECT_FALSE(m[5].carries_buffer());

  EXPECT_TRUE(m[3].oneway);
  EXPECT_TRUE(m[3].carries_buffer());

  EXPECT_TRUE(m[4].carries_buffer());
  EXPECT_TRUE(m[4].carries_handles());
  EXPECT_TRUE(m[4].request_carries_handles());

  EXPECT_FALSE(m[6].carries_buffer());
  EXPECT_EQ(m[6].params[0].type.kind, Kind::kBytes);
}

// A buffer is a type only where a type is expected: `buffer<...>` is not one.
TEST(BufferTypes, TakesNoArguments) {
  Frontend frontend({});
  frontend.AddVirtualFile("b.idl", R"(package b;
[uuid(6f1c2a34-9b7e-4d2a-8c11-0a1b2c3d4e81), version(1.0)]
interface I { void Put([in] buffer<int32> b); }
)");
  EXPECT_EQ(frontend.Parse("b.idl"), nullptr);
  EXPECT_THAT(frontend.FormatDiagnostics(),
              HasSubstr("b.idl:3:35: error: expected a parameter name but "
                        "found '<'"));
}

// Every refused placement of a method reports once, at the buffer, even
// when several apply to one method.
TEST(BufferTypes, OneErrorPerMethod) {
  Frontend frontend({});
  frontend.AddVirtualFile("b.idl", R"(package b;
struct S { int32 x; }
[uuid(6f1c2a34-9b7e-4d2a-8c11-0a1b2c3d4e82), version(1.0)]
interface I {
  [async] stream<S> Watch([in] buffer a, [in] buffer b);
  [async] buffer Get();
}
)");
  EXPECT_EQ(frontend.Parse("b.idl"), nullptr);
  const std::string text = frontend.FormatDiagnostics();
  EXPECT_THAT(text, HasSubstr("b.idl:5:47: error: method 'Watch' takes more "
                              "than one buffer parameter ('a' and 'b')"));
  EXPECT_THAT(text, HasSubstr("b.idl:6:11: error: [async] method 'Get' "
                              "cannot carry a buffer"));
  EXPECT_THAT(frontend.diagnostics(), SizeIs(2)) << text;
}

}  // namespace
}  // namespace lpc::idl
