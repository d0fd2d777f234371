#include "profiled/ingest/mapped_json.h"
#include "profiled/ingest/event_decoder.h"
#include "profiled/base/status_macros.h"

#include <simdjson.h>

#include <cmath>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "profiled/core/profile.h"
#include "profiled/ingest/segment_json.h"
#include "simdjson_util.h"

namespace profiled::ingest {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using internal::A;

struct Reject {
  RejectReason reason;
  std::string detail;
};

// Writes one extracted value into the envelope.
using Setter = std::function<void(const std::string& value, v1::InteractionEvent& e)>;

struct Binding {
  std::string field;    // envelope path, for messages
  std::string pointer;
  Setter set;
};

// A setter for a scalar field of a sub-message, found by name through
// reflection, so every Context and Commerce field can be mapped.
std::optional<Setter> ReflectedSetter(const google::protobuf::Descriptor& d, std::string_view name,
                                      google::protobuf::Message* (*sub)(v1::InteractionEvent&)) {
  const google::protobuf::FieldDescriptor* f = d.FindFieldByName(std::string(name));
  if (f == nullptr || f->is_repeated() || f->is_map()) return std::nullopt;
  using FD = google::protobuf::FieldDescriptor;
  switch (f->cpp_type()) {
    case FD::CPPTYPE_STRING:
      return [f, sub](const std::string& v, v1::InteractionEvent& e) {
        google::protobuf::Message* m = sub(e);
        m->GetReflection()->SetString(m, f, v);
      };
    case FD::CPPTYPE_DOUBLE:
      return [f, sub](const std::string& v, v1::InteractionEvent& e) {
        double x = 0;
        if (!absl::SimpleAtod(v, &x) || !std::isfinite(x)) {
          throw Reject{RejectReason::kWrongFieldType, absl::StrCat(f->full_name(), " must be a number")};
        }
        google::protobuf::Message* m = sub(e);
        m->GetReflection()->SetDouble(m, f, x);
      };
    case FD::CPPTYPE_INT64:
      return [f, sub](const std::string& v, v1::InteractionEvent& e) {
        int64_t x = 0;
        if (!absl::SimpleAtoi(v, &x)) {
          throw Reject{RejectReason::kWrongFieldType, absl::StrCat(f->full_name(), " must be an integer")};
        }
        google::protobuf::Message* m = sub(e);
        m->GetReflection()->SetInt64(m, f, x);
      };
    default:
      return std::nullopt;
  }
}

std::optional<Setter> SetterFor(std::string_view field) {
  const size_t dot = field.find('.');
  const std::string_view head = field.substr(0, dot);
  const std::string rest(dot == std::string_view::npos ? "" : field.substr(dot + 1));
  if (field == "channel") {
    return [](const std::string& v, v1::InteractionEvent& e) { e.set_channel(v); };
  }
  if (rest.empty()) return std::nullopt;
  if (head == "identities") {
    return [rest](const std::string& v, v1::InteractionEvent& e) {
      core::SetIdentity({rest, v}, *e.mutable_identities());
    };
  }
  if (head == "traits") {
    return [rest](const std::string& v, v1::InteractionEvent& e) { (*e.mutable_traits())[rest] = v; };
  }
  if (head == "properties") {
    return [rest](const std::string& v, v1::InteractionEvent& e) { (*e.mutable_properties())[rest] = v; };
  }
  if (head == "context") {
    return ReflectedSetter(*v1::Context::descriptor(), rest, [](v1::InteractionEvent& e) {
      return static_cast<google::protobuf::Message*>(e.mutable_context());
    });
  }
  if (head == "commerce") {
    return ReflectedSetter(*v1::Commerce::descriptor(), rest, [](v1::InteractionEvent& e) {
      return static_cast<google::protobuf::Message*>(e.mutable_commerce());
    });
  }
  return std::nullopt;
}

bool IsPointer(std::string_view p) { return !p.empty() && p.front() == '/'; }

}  // namespace

struct MappedJsonDecoder::Impl {
  MappedJsonOptions options;
  std::vector<Binding> bindings;
  simdjson::dom::parser parser;

  // The value at `pointer` as text, or nullopt when missing or null.
  std::optional<std::string> ValueAt(element record, const std::string& pointer,
                                     std::string_view field, bool scalar_only) {
    element v;
    if (record.at_pointer(pointer).get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
    std::string text;
    switch (v.type()) {
      case element_type::STRING: text = std::string(v.get_string().value_unsafe()); break;
      case element_type::BOOL: text = v.get_bool().value_unsafe() ? "true" : "false"; break;
      case element_type::ARRAY:
      case element_type::OBJECT:
        if (scalar_only) {
          throw Reject{RejectReason::kWrongFieldType,
                       absl::StrCat(A(field), " (", pointer, ") must be a scalar")};
        }
        text = simdjson::minify(v);
        break;
      default: text = simdjson::minify(v);  // numbers as written
    }
    if (text.size() > options.limits.max_string_bytes) {
      throw Reject{RejectReason::kStringTooLong,
                   absl::StrCat(A(field), " (", pointer, ") is ", text.size(), " bytes (limit ",
                                options.limits.max_string_bytes, ")")};
    }
    return text;
  }

  int64_t TimeOf(element record) {
    const FieldMap& map = options.map;
    element v;
    if (record.at_pointer(map.time).get(v) != simdjson::SUCCESS || v.is_null()) {
      throw Reject{RejectReason::kInvalidEventTime, absl::StrCat("no event time at ", map.time)};
    }
    auto bad = [&] {
      return Reject{RejectReason::kInvalidEventTime,
                    absl::StrCat("event time at ", map.time, " is not a valid ",
                                 map.time_format == TimeFormat::kRfc3339 ? "RFC 3339 timestamp"
                                                                         : "timestamp")};
    };
    double number = 0;
    bool numeric = false;
    if (v.is_number()) {
      numeric = v.get_double().get(number) == simdjson::SUCCESS;
    } else if (v.type() == element_type::STRING) {
      const std::string_view s = v.get_string().value_unsafe();
      if (map.time_format != TimeFormat::kRfc3339 && absl::SimpleAtod(A(s), &number)) {
        numeric = true;
      } else if (map.time_format == TimeFormat::kAuto || map.time_format == TimeFormat::kRfc3339) {
        if (std::optional<int64_t> ms = internal::ParseRfc3339Ms(s)) return *ms;
        throw bad();
      }
    }
    if (!numeric || !std::isfinite(number) || map.time_format == TimeFormat::kRfc3339) throw bad();
    const bool seconds = map.time_format == TimeFormat::kUnixSeconds ||
                         (map.time_format == TimeFormat::kAuto && std::fabs(number) < 1e11);
    const double ms = seconds ? number * 1000.0 : number;
    if (ms > 9e15 || ms < -9e15) throw bad();
    return static_cast<int64_t>(std::floor(ms));
  }

  v1::InteractionEvent Read(element record) {
    const FieldMap& map = options.map;
    v1::InteractionEvent e;
    e.set_channel(options.default_channel);
    std::string id;
    for (const std::string& pointer : map.event_id) {
      std::optional<std::string> part = ValueAt(record, pointer, "event_id", true);
      if (!part || part->empty()) {
        throw Reject{RejectReason::kMissingEventId, absl::StrCat("no event id at ", pointer)};
      }
      absl::StrAppend(&id, id.empty() ? "" : ":", *part);
    }
    e.set_event_id(id);
    std::optional<std::string> type = ValueAt(record, map.type, "type", true);
    if (!type || type->empty()) {
      throw Reject{RejectReason::kMissingType, absl::StrCat("no event type at ", map.type)};
    }
    auto mapped = map.type_values.find(*type);
    e.set_type(mapped != map.type_values.end() ? mapped->second : SegmentEventType(*type));
    e.set_event_time_ms(TimeOf(record));
    for (const Binding& b : bindings) {
      const bool free_form = b.field.rfind("properties.", 0) == 0 || b.field.rfind("traits.", 0) == 0;
      if (std::optional<std::string> v = ValueAt(record, b.pointer, b.field, !free_form)) {
        b.set(*v, e);
      }
    }
    if (std::optional<Rejection> invalid = ValidateEvent(e)) throw Reject{invalid->reason, invalid->detail};
    return e;
  }
};

absl::StatusOr<MappedJsonDecoder> MappedJsonDecoder::Create(MappedJsonOptions options) {
  std::vector<std::string> errors;
  const FieldMap& map = options.map;
  if (map.event_id.empty()) errors.push_back("event_id: at least one JSON pointer is required");
  for (const std::string& pointer : map.event_id) {
    if (!IsPointer(pointer)) {
      errors.push_back(absl::StrCat("event_id: '", pointer, "' is not a JSON pointer (e.g. /id)"));
    }
  }
  for (const auto& [name, pointer] : {std::pair<const char*, const std::string&>{"type", map.type},
                                      {"time", map.time}}) {
    if (!IsPointer(pointer)) {
      errors.push_back(absl::StrCat(name, ": '", pointer, "' is not a JSON pointer (e.g. /event)"));
    }
  }
  auto impl = std::make_unique<Impl>();
  for (const auto& [field, pointer] : map.fields) {
    std::optional<Setter> set = SetterFor(field);
    if (!set) {
      errors.push_back(absl::StrCat(
          "fields.", field,
          ": not a mappable envelope field (identities.<kind>, channel, context.<field>, "
          "commerce.<field>, traits.<key>, properties.<key>)"));
    }
    if (!IsPointer(pointer)) {
      errors.push_back(absl::StrCat("fields.", field, ": '", pointer, "' is not a JSON pointer"));
    }
    if (set) impl->bindings.push_back({field, pointer, std::move(*set)});
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  impl->options = std::move(options);
  return MappedJsonDecoder(std::move(impl));
}

MappedJsonDecoder::MappedJsonDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MappedJsonDecoder::~MappedJsonDecoder() = default;
MappedJsonDecoder::MappedJsonDecoder(MappedJsonDecoder&&) noexcept = default;
MappedJsonDecoder& MappedJsonDecoder::operator=(MappedJsonDecoder&&) noexcept = default;

std::optional<Rejection> MappedJsonDecoder::Decode(std::string_view payload,
                                                   std::vector<v1::InteractionEvent>& out) {
  const JsonLimits& limits = impl_->options.limits;
  element root;
  if (auto rejection = internal::ParseDocument(impl_->parser, payload, limits, root)) {
    return rejection;
  }
  std::vector<v1::InteractionEvent> events;
  if (root.type() == element_type::ARRAY) {
    size_t i = 0;
    for (element record : internal::AsArray(root)) {
      if (++i > limits.max_batch_events) {
        return Rejection{RejectReason::kBatchTooLarge,
                         absl::StrCat("more than ", limits.max_batch_events, " records")};
      }
      try {
        events.push_back(impl_->Read(record));
      } catch (Reject& r) {
        return Rejection{r.reason, absl::StrCat("[", i - 1, "]: ", r.detail)};
      }
    }
  } else {
    try {
      events.push_back(impl_->Read(root));
    } catch (Reject& r) {
      return Rejection{r.reason, std::move(r.detail)};
    }
  }
  for (v1::InteractionEvent& e : events) out.push_back(std::move(e));
  return std::nullopt;
}

EventFormat MappedJsonEventFormat() {
  return {.name = "json",
          .summary = "any JSON through a field map (webhooks, CRM exports)",
          .takes_map = true,
          .redactable_json = true,
          .split_file = internal::SplitJsonDocuments,
          .create = [](const DecoderOptions& o) -> absl::StatusOr<std::unique_ptr<EventDecoder>> {
            ASSIGN_OR_RETURN(MappedJsonDecoder decoder,
                             MappedJsonDecoder::Create({o.default_channel, o.limits, o.map}));
            return std::make_unique<internal::DecoderAdapter<MappedJsonDecoder>>(std::move(decoder));
          }};
}

}  // namespace profiled::ingest
