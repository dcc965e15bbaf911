#include "core/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/ops.h"

namespace tether::safetensors {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100 * 1024 * 1024;  // as the reference implementation

struct DTypeInfo {
  const char* name;
  size_t bytes;
};
constexpr DTypeInfo kDTypes[] = {{"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2},
                                 {"I64", 8}, {"I32", 4}, {"U8", 1},  {"BOOL", 1}};

size_t dtype_bytes(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return d.bytes;
  return 0;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      uint32_t m = mant;
      do {
        ++e;
        m <<= 1;
      } while (!(m & 0x400));
      bits = sign | ((127 - 15 - e) << 23) | ((m & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

Tensor decode(const std::string& dtype, const Shape& shape, const char* data) {
  const int64_t n = shape_numel(shape);
  auto copy_as = [&](DType out_dtype) {
    Tensor t = Tensor::empty(shape, out_dtype);
    std::memcpy(t.raw_data(), data, n * element_size(out_dtype));
    return t;
  };
  if (dtype == "F32") return copy_as(DType::f32);
  if (dtype == "F64") return copy_as(DType::f64);
  if (dtype == "I64") return copy_as(DType::i64);
  if (dtype == "U8" || dtype == "BOOL") return copy_as(DType::u8);
  if (dtype == "I32") {
    Tensor t = Tensor::empty(shape, DType::i64);
    int64_t* out = t.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, data + 4 * i, 4);
      out[i] = v;
    }
    return t;
  }
  Tensor t = Tensor::empty(shape, DType::f32);  // F16 / BF16
  float* out = t.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, data + 2 * i, 2);
    if (dtype == "F16") {
      out[i] = half_to_float(v);
    } else {
      const uint32_t bits = static_cast<uint32_t>(v) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  }
  return t;
}

const char* encode_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

}  // namespace

File parse(const std::string& bytes, const std::string& origin) {
  TETHER_CHECK(bytes.size() >= 8, origin, ": not a safetensors file (", bytes.size(),
               " bytes, shorter than the 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  TETHER_CHECK(header_len <= kMaxHeaderBytes, origin, ": header length ", header_len, " exceeds the ",
               kMaxHeaderBytes, "-byte limit (corrupt or not safetensors)");
  TETHER_CHECK(header_len <= bytes.size() - 8, origin, ": truncated: header claims ", header_len, " bytes but only ",
               bytes.size() - 8, " follow");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<int64_t>(header_len));
  } catch (const nlohmann::json::exception& e) {
    TETHER_FAIL(origin, ": header is not valid JSON (", e.what(), ")");
  }
  TETHER_CHECK(header.is_object(), origin, ": header is not a JSON object");
  const char* data = bytes.data() + 8 + header_len;
  const uint64_t data_len = bytes.size() - 8 - header_len;

  File file;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      TETHER_CHECK(entry.is_object(), origin, ": __metadata__ must be an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        TETHER_CHECK(m.value().is_string(), origin, ": __metadata__ value for '", m.key(), "' is not a string");
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = origin + ": tensor '" + name + "'";
    TETHER_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                     entry.contains("data_offsets"),
                 where, ": entry needs dtype, shape and data_offsets");
    TETHER_CHECK(entry["dtype"].is_string(), where, ": dtype is not a string");
    const std::string dtype = entry["dtype"].get<std::string>();
    const size_t bytes_per = dtype_bytes(dtype);
    TETHER_CHECK(bytes_per > 0, where, ": unsupported dtype ", dtype, " (supported: F32 F64 F16 BF16 I64 I32 U8 BOOL)");
    Shape shape;
    TETHER_CHECK(entry["shape"].is_array(), where, ": shape is not an array");
    for (const auto& d : entry["shape"]) {
      TETHER_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
                   ": bad dimension in shape");
      shape.push_back(d.get<int64_t>());
    }
    const auto& off = entry["data_offsets"];
    TETHER_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                 where, ": data_offsets must be two non-negative integers");
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    TETHER_CHECK(begin <= end && end <= data_len, where, ": data_offsets [", begin, ", ", end,
                 ") outside the data section of ", data_len, " bytes (truncated file?)");
    const uint64_t expected = static_cast<uint64_t>(shape_numel(shape)) * bytes_per;
    TETHER_CHECK(end - begin == expected, where, ": ", end - begin, " bytes for ", dtype, shape_str(shape),
                 ", which needs ", expected);
    file.tensors[name] = decode(dtype, shape, data + begin);
    spans.push_back({begin, end, name});
  }
  // The data section must be tiled exactly: no overlap, no holes.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  uint64_t cursor = 0;
  for (const Span& s : spans) {
    TETHER_CHECK(s.begin >= cursor, origin, ": tensor '", s.name, "' overlaps the previous tensor's data");
    TETHER_CHECK(s.begin == cursor, origin, ": a hole of ", s.begin - cursor, " bytes before tensor '", s.name, "'");
    cursor = s.end;
    file.order.push_back(s.name);
  }
  TETHER_CHECK(cursor == data_len, origin, ": ", data_len - cursor, " trailing bytes after the last tensor");
  return file;
}

File load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TETHER_CHECK(in.good(), "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse(buffer.str(), "'" + path + "'");
}

void save(const std::string& path, const std::map<std::string, Tensor>& tensors,
          const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TETHER_CHECK(name != "__metadata__", "safetensors: '__metadata__' is not a tensor name");
    Tensor h = ops::contiguous(t.to(Device::cpu()));
    const uint64_t n = static_cast<uint64_t>(h.numel()) * element_size(h.dtype());
    header[name] = {{"dtype", encode_name(h.dtype())}, {"shape", h.shape()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    host.push_back(h);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TETHER_CHECK(out.good(), "cannot write '", tmp, "': ", std::strerror(errno));
    uint64_t len = json.size();
    char len_bytes[8];
    for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    out.write(len_bytes, 8);
    out.write(json.data(), static_cast<std::streamsize>(json.size()));
    for (const Tensor& h : host)
      out.write(static_cast<const char*>(h.raw_data()), static_cast<std::streamsize>(h.numel() * element_size(h.dtype())));
    out.flush();
    TETHER_CHECK(out.good(), "writing '", tmp, "' failed (disk full?)");
  }
  TETHER_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path, "': ",
               std::strerror(errno));
}

}  // namespace tether::safetensors
