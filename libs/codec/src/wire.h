// The protobuf wire format, read and written by hand for the stored state
// (state_codec.cc): straight between bytes and core::Profile, with no
// message objects in between (docs/benchmarks.md, "Pure stages"). The
// reader accepts what the generated parser accepts — fields in any order,
// repeated scalars packed or not, unknown fields and groups skipped, a
// known field of the wrong wire type skipped as unknown — and refuses what
// it refuses; tests/unit/state_codec_test.cc holds both to the generated
// code on random and mutated bytes.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace profiled::codec::wire {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

constexpr uint32_t Tag(uint32_t field, WireType type) { return (field << 3) | type; }

// 1 byte per 7 bits, without a loop: (bits * 9 + 64) / 64 for bits >= 1.
inline size_t VarintSize(uint64_t v) {
  return static_cast<size_t>((std::bit_width(v | 1) * 9 + 64) / 64);
}

// Bounds-checked reads over one message's bytes. Every read returns false
// on bytes the generated parser would refuse; the reader then stays failed.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool AtEnd() const { return p_ == end_; }

  // The next field's number and wire type; false at a malformed tag (field
  // 0, wire type 6 or 7, an end-group outside a group).
  bool ReadTag(uint32_t& field, uint32_t& type) {
    uint32_t tag = 0;
    if (!ReadTagValue(tag)) return false;
    field = tag >> 3;
    type = tag & 7;
    return field != 0 && type <= kFixed32 && type != kEndGroup;
  }

  // Up to ten bytes; bits past 64 are dropped, as the generated parser does.
  bool ReadVarint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) return false;
      const auto byte = static_cast<uint8_t>(*p_++);
      if (shift < 64) v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool ReadFixed64(uint64_t& v) {
    if (end_ - p_ < 8) return false;
    std::memcpy(&v, p_, 8);  // little-endian hosts only (as the stored bytes)
    p_ += 8;
    return true;
  }

  bool ReadLengthDelimited(std::string_view& bytes) {
    uint32_t size = 0;
    if (!ReadSize(size) || size > static_cast<uint64_t>(end_ - p_)) return false;
    bytes = std::string_view(p_, static_cast<size_t>(size));
    p_ += size;
    return true;
  }

  // Skips a field of `type` whose tag was just read (a group up to its end).
  bool Skip(uint32_t field, uint32_t type, int depth = 0) {
    uint64_t ignored = 0;
    std::string_view bytes;
    switch (type) {
      case kVarint:
        return ReadVarint(ignored);
      case kFixed64:
        return ReadFixed64(ignored);
      case kLengthDelimited:
        return ReadLengthDelimited(bytes);
      case kFixed32:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      case kStartGroup:
        return SkipGroup(field, depth);
      default:
        return false;
    }
  }

 private:
  // A length is at most five bytes and under 2 GiB: the generated parser
  // refuses a longer prefix even when its value is small.
  bool ReadSize(uint32_t& size) {
    size = 0;
    for (int i = 0; i < 5; ++i) {
      if (p_ == end_) return false;
      const auto byte = static_cast<uint8_t>(*p_++);
      if (i == 4 && byte >= 8) return false;
      size |= static_cast<uint32_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  // A tag is at most five bytes, bits past 32 dropped (as generated code).
  bool ReadTagValue(uint32_t& tag) {
    tag = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (p_ == end_) return false;
      const auto byte = static_cast<uint8_t>(*p_++);
      tag |= static_cast<uint32_t>(static_cast<uint64_t>(byte & 0x7f) << shift);
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool SkipGroup(uint32_t field, int depth) {
    if (depth >= 100) return false;  // the generated parser's recursion limit
    while (true) {
      uint32_t tag = 0;
      if (!ReadTagValue(tag)) return false;
      const uint32_t inner = tag >> 3;
      const uint32_t type = tag & 7;
      if (type == kEndGroup) return inner == field;
      if (inner == 0 || !Skip(inner, type, depth + 1)) return false;
    }
  }

  const char* p_;
  const char* end_;
};

// Writes into a buffer sized beforehand by a Counter given the same calls.
class Writer {
 public:
  explicit Writer(char* out) : p_(out) {}
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void Fixed64(uint64_t v) {
    std::memcpy(p_, &v, 8);
    p_ += 8;
  }
  void Raw(std::string_view bytes) {
    if (!bytes.empty()) std::memcpy(p_, bytes.data(), bytes.size());
    p_ += bytes.size();
  }
  const char* position() const { return p_; }

 private:
  char* p_;
};

// Counts what a Writer given the same calls writes.
class Counter {
 public:
  void Varint(uint64_t v) { size_ += VarintSize(v); }
  void Fixed64(uint64_t) { size_ += 8; }
  void Raw(std::string_view bytes) { size_ += bytes.size(); }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

// ---- Fields as the generated serializer writes them (a message's fields
// in number order, proto3 defaults left out, repeated scalars packed), to a
// Writer or a Counter.

template <typename Out>
void PutVarintField(Out& out, uint32_t field, uint64_t v) {
  if (v == 0) return;
  out.Varint(Tag(field, kVarint));
  out.Varint(v);
}
// int32 and int64 values are sign-extended to 64 bits on the wire.
template <typename Out>
void PutInt(Out& out, uint32_t field, int64_t v) {
  PutVarintField(out, field, static_cast<uint64_t>(v));
}
template <typename Out>
void PutFixed64Field(Out& out, uint32_t field, uint64_t v) {
  if (v == 0) return;
  out.Varint(Tag(field, kFixed64));
  out.Fixed64(v);
}
// Left out when its bits are 0: -0.0 is written, as generated code does.
template <typename Out>
void PutDouble(Out& out, uint32_t field, double v) {
  PutFixed64Field(out, field, std::bit_cast<uint64_t>(v));
}
// A repeated string element is written even when empty; a singular one not.
template <typename Out>
void PutString(Out& out, uint32_t field, std::string_view s) {
  out.Varint(Tag(field, kLengthDelimited));
  out.Varint(s.size());
  out.Raw(s);
}
template <typename Out>
void PutSingularString(Out& out, uint32_t field, std::string_view s) {
  if (!s.empty()) PutString(out, field, s);
}
// A packed run of varints: `each(emit)` calls emit(v) for every element.
template <typename Out, typename Each>
void PutPackedVarints(Out& out, uint32_t field, size_t count, const Each& each) {
  if (count == 0) return;
  Counter size;
  each([&](uint64_t v) { size.Varint(v); });
  out.Varint(Tag(field, kLengthDelimited));
  out.Varint(size.size());
  each([&](uint64_t v) { out.Varint(v); });
}
template <typename Out, typename Each>
void PutPackedFixed64(Out& out, uint32_t field, size_t count, const Each& each) {
  if (count == 0) return;
  out.Varint(Tag(field, kLengthDelimited));
  out.Varint(8 * count);
  each([&](uint64_t v) { out.Fixed64(v); });
}
// A nested message: its length first, so it is counted, then written.
template <typename Out, typename Body>
void PutMessage(Out& out, uint32_t field, const Body& body) {
  Counter size;
  body(size);
  out.Varint(Tag(field, kLengthDelimited));
  out.Varint(size.size());
  body(out);
}

}  // namespace profiled::codec::wire
