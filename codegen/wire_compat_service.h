// Implementations of testdata/wire_compat.idl's services for the server
// direction of the wire compatibility tests: each handler records the
// values it received as the protoc request message (so a test compares
// them with the message it sent), and answers with the values of a protoc
// reply message the test set beforehand (so the test compares the reply
// bytes with protoc's serialization of it).
#ifndef LPC_CODEGEN_WIRE_COMPAT_SERVICE_H_
#define LPC_CODEGEN_WIRE_COMPAT_SERVICE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "codegen/testdata/wire_compat.lpc.h"

namespace lpc::wire_testing {

class RecordingWire final : public codegen::wire::WireService {
 public:
  using Color = codegen::wire::Color;
  using Leaf = codegen::wire::Leaf;

  // What the handlers received; what they answer.
  codegen::wire::EchoScalarsRequest echo_scalars;
  codegen::wire::EchoScalarsResponse echo_scalars_reply;
  codegen::wire::AllInRequest all_in;
  codegen::wire::AllOutResponse all_out_reply;
  // InOut answers by rule: result x - 1; i8 127 if it was 0, else 0; s
  // with "!" appended; by and leaf as they came; xs negated; y -32768; m
  // with keys and values swapped; o 0 if it was absent, else as it came.
  codegen::wire::InOutRequest in_out;
  codegen::wire::EchoContainersRequest echo_containers;
  codegen::wire::EchoContainersResponse echo_containers_reply;
  codegen::wire::SeqsRequest seqs;
  codegen::wire::SeqsResponse seqs_reply;
  codegen::wire::MapsRequest maps;
  codegen::wire::MapsResponse maps_reply;
  codegen::wire::OptsRequest opts;
  codegen::wire::OptsResponse opts_reply;
  codegen::wire::EchoTreeRequest echo_tree;
  codegen::wire::EchoTreeResponse echo_tree_reply;
  codegen::wire::FireRequest fire;
  int nothing_calls = 0;
  codegen::wire::TextRequest text;
  codegen::wire::TextResponse text_reply;
  codegen::wire::BlobRequest blob;
  codegen::wire::BlobResponse blob_reply;
  codegen::wire::PaintRequest paint;
  codegen::wire::PaintResponse paint_reply;
  codegen::wire::MaybeTextRequest maybe_text;
  codegen::wire::MaybeTextResponse maybe_text_reply;
  codegen::wire::LeavesRequest leaves;
  codegen::wire::LeavesResponse leaves_reply;

  absl::StatusOr<codegen::wire::Scalars> EchoScalars(
      CallContext&, const codegen::wire::Scalars& s) override {
    *echo_scalars.mutable_s() = s;
    return echo_scalars_reply.result();
  }

  absl::Status AllIn(CallContext&, bool b, int8_t i8, int16_t i16, int32_t i32,
                     int64_t i64, uint8_t u8, uint16_t u16, uint32_t u32,
                     uint64_t u64, float f, double d, const std::string& s,
                     const std::string& by, Color c) override {
    all_in.Clear();
    all_in.set_b(b);
    all_in.set_i8(i8);
    all_in.set_i16(i16);
    all_in.set_i32(i32);
    all_in.set_i64(i64);
    all_in.set_u8(u8);
    all_in.set_u16(u16);
    all_in.set_u32(u32);
    all_in.set_u64(u64);
    all_in.set_f(f);
    all_in.set_d(d);
    all_in.set_s(s);
    all_in.set_by(by);
    all_in.set_c(c);
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> AllOut(CallContext&, bool* b, int8_t* i8,
                                  int16_t* i16, int32_t* i32, int64_t* i64,
                                  uint8_t* u8, uint16_t* u16, uint32_t* u32,
                                  uint64_t* u64, float* f, double* d,
                                  std::string* s, std::string* by,
                                  Color* c) override {
    const codegen::wire::AllOutResponse& r = all_out_reply;
    *b = r.b();
    *i8 = static_cast<int8_t>(r.i8());
    *i16 = static_cast<int16_t>(r.i16());
    *i32 = r.i32();
    *i64 = r.i64();
    *u8 = static_cast<uint8_t>(r.u8());
    *u16 = static_cast<uint16_t>(r.u16());
    *u32 = r.u32();
    *u64 = r.u64();
    *f = r.f();
    *d = r.d();
    *s = r.s();
    *by = r.by();
    *c = r.c();
    return r.result();
  }

  absl::StatusOr<int64_t> InOut(CallContext&, int8_t* i8, int32_t x,
                                std::string* s, std::string* by, Leaf* leaf,
                                std::vector<int32_t>* xs, int16_t* y,
                                std::map<std::string, std::string>* m,
                                std::optional<int32_t>* o) override {
    in_out.Clear();
    in_out.set_i8(*i8);
    in_out.set_x(x);
    in_out.set_s(*s);
    in_out.set_by(*by);
    *in_out.mutable_leaf() = *leaf;
    for (int32_t v : *xs) in_out.add_xs(v);
    for (const auto& [k, v] : *m) (*in_out.mutable_m())[k] = v;
    if (o->has_value()) in_out.set_o(**o);
    *i8 = *i8 == 0 ? 127 : 0;
    *s += "!";
    for (int32_t& v : *xs) v = -v;
    *y = -32768;
    std::map<std::string, std::string> swapped;
    for (const auto& [k, v] : *m) swapped[v] = k;
    *m = std::move(swapped);
    if (!o->has_value()) *o = 0;
    return int64_t{x} - 1;
  }

  absl::StatusOr<codegen::wire::Containers> EchoContainers(
      CallContext&, const codegen::wire::Containers& c) override {
    *echo_containers.mutable_c() = c;
    return echo_containers_reply.result();
  }

  absl::StatusOr<std::vector<int8_t>> Seqs(
      CallContext&, const std::vector<int32_t>& i32s,
      const std::vector<int8_t>& i8s, const std::vector<std::string>& strs,
      const std::vector<std::string>& blobs, const std::vector<Leaf>& leaves,
      const std::vector<Color>& colors, const std::vector<double>& ds,
      std::vector<uint16_t>* u16s) override {
    seqs.Clear();
    for (int32_t v : i32s) seqs.add_i32s(v);
    for (int8_t v : i8s) seqs.add_i8s(v);
    for (const std::string& v : strs) seqs.add_strs(v);
    for (const std::string& v : blobs) seqs.add_blobs(v);
    for (const Leaf& v : leaves) *seqs.add_leaves() = v;
    for (Color v : colors) seqs.add_colors(v);
    for (double v : ds) seqs.add_ds(v);
    u16s->assign(seqs_reply.u16s().begin(), seqs_reply.u16s().end());
    return std::vector<int8_t>(seqs_reply.result().begin(),
                               seqs_reply.result().end());
  }

  absl::StatusOr<std::map<int16_t, uint8_t>> Maps(
      CallContext&, const std::map<std::string, Leaf>& a,
      const std::map<int64_t, std::string>& b, const std::map<bool, int32_t>& c,
      const std::map<uint8_t, Color>& d,
      std::map<uint64_t, std::string>* e) override {
    maps.Clear();
    for (const auto& [k, v] : a) (*maps.mutable_a())[k] = v;
    for (const auto& [k, v] : b) (*maps.mutable_b())[k] = v;
    for (const auto& [k, v] : c) (*maps.mutable_c())[k] = v;
    for (const auto& [k, v] : d) (*maps.mutable_d())[k] = v;
    e->clear();
    for (const auto& [k, v] : maps_reply.e()) (*e)[k] = v;
    std::map<int16_t, uint8_t> result;
    for (const auto& [k, v] : maps_reply.result()) {
      result[static_cast<int16_t>(k)] = static_cast<uint8_t>(v);
    }
    return result;
  }

  absl::StatusOr<std::optional<Leaf>> Opts(
      CallContext&, const std::optional<int32_t>& a,
      const std::optional<std::string>& b, const std::optional<Leaf>& c,
      const std::optional<Color>& d, const std::optional<uint8_t>& e,
      std::optional<double>* f, std::optional<std::string>* g) override {
    opts.Clear();
    if (a) opts.set_a(*a);
    if (b) opts.set_b(*b);
    if (c) *opts.mutable_c() = *c;
    if (d) opts.set_d(*d);
    if (e) opts.set_e(*e);
    const codegen::wire::OptsResponse& r = opts_reply;
    if (r.has_f()) *f = r.f();
    if (r.has_g()) *g = r.g();
    if (!r.has_result()) return std::nullopt;
    return r.result();
  }

  absl::StatusOr<codegen::wire::Tree> EchoTree(
      CallContext&, const codegen::wire::Tree& t) override {
    *echo_tree.mutable_t() = t;
    return echo_tree_reply.result();
  }

  void Fire(CallContext&, const std::string& s, int16_t x,
            const Leaf& leaf) override {
    fire.Clear();
    fire.set_s(s);
    fire.set_x(x);
    *fire.mutable_leaf() = leaf;
  }

  absl::Status Nothing(CallContext&) override {
    ++nothing_calls;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Text(CallContext&, const std::string& s) override {
    text.set_s(s);
    return text_reply.result();
  }

  absl::StatusOr<std::string> Blob(CallContext&, const std::string& b) override {
    blob.set_b(b);
    return blob_reply.result();
  }

  absl::StatusOr<Color> Paint(CallContext&, Color c) override {
    paint.set_c(c);
    return paint_reply.result();
  }

  absl::StatusOr<std::optional<std::string>> MaybeText(CallContext&,
                                                       bool give) override {
    maybe_text.set_give(give);
    if (!maybe_text_reply.has_result()) return std::nullopt;
    return maybe_text_reply.result();
  }

  absl::StatusOr<std::vector<Leaf>> Leaves(CallContext&, int32_t n) override {
    leaves.set_n(n);
    return std::vector<Leaf>(leaves_reply.result().begin(),
                             leaves_reply.result().end());
  }
};

class RecordingContexts final : public codegen::wire::ContextsService {
 public:
  using Session = codegen::wire::Session;

  codegen::wire::OpenRequest open;
  codegen::wire::OpenResponse open_reply;
  codegen::wire::UseRequest use;
  codegen::wire::UseResponse use_reply;

  absl::StatusOr<Session> Open(CallContext&, const std::string& name) override {
    open.set_name(name);
    return Session::FromWire(open_reply.result());
  }

  absl::StatusOr<Session> Use(CallContext&, Session s, Session* t, Session* u,
                              const codegen::wire::Holder& h,
                              codegen::wire::Holder* g) override {
    use.Clear();
    use.set_s(s.wire_id());
    use.set_t(t->wire_id());
    *use.mutable_h() = h;
    *t = Session::FromWire(use_reply.t());
    *u = Session::FromWire(use_reply.u());
    *g = use_reply.g();
    return Session::FromWire(use_reply.result());
  }
};

}  // namespace lpc::wire_testing

#endif  // LPC_CODEGEN_WIRE_COMPAT_SERVICE_H_
