// Canonical JSON writer for records and a small bounded parser for request objects.
//
// The writer produces the one spelling the Python codec produces (host/protocol/wire.py
// canonical_json): compact, ASCII only, keys in call order, non-integer numbers as float32 "%.9g".
// The parser accepts any RFC 8259 JSON object text but keeps only its top-level scalar members
// (requests are flat); nesting is validated and skipped, with a depth limit so hostile input
// cannot exhaust the stack.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hil {

class JsonWriter {
public:
    JsonWriter &begin_object();
    JsonWriter &end_object();
    JsonWriter &begin_array();
    JsonWriter &end_array();
    JsonWriter &key(std::string_view name);
    JsonWriter &str(std::string_view text);  // UTF-8 in; invalid sequences become U+FFFD
    JsonWriter &num(int64_t value);
    JsonWriter &flt(float value);  // NaN/inf become null
    JsonWriter &boolean(bool value);
    JsonWriter &null();
    const std::string &text() const { return out_; }

private:
    void before_value();
    std::string out_;
    std::vector<bool> need_comma_;
    bool after_key_ = false;
};

void json_escape(std::string_view text, std::string &out);
void json_float(float value, std::string &out);

struct JsonScalar {
    enum Type { kString, kInt, kFloat, kBool, kNull, kNested } type = kNull;
    std::string s;
    int64_t i = 0;
    double d = 0.0;
    bool b = false;
};

class JsonObject {
public:
    static constexpr size_t kMaxMembers = 64;
    static constexpr int kMaxDepth = 8;

    // Parse `text` (one JSON object, surrounding whitespace allowed). On failure returns false and
    // sets `error` to a short reason.
    bool parse(std::string_view text, std::string *error);

    const JsonScalar *get(std::string_view name) const;
    bool get_string(std::string_view name, std::string *out) const;
    bool get_int(std::string_view name, int64_t *out) const;      // integers only
    bool get_number(std::string_view name, double *out) const;    // integer or float
    bool get_bool(std::string_view name, bool *out) const;
    size_t size() const { return members_.size(); }

private:
    std::vector<std::pair<std::string, JsonScalar>> members_;
};

}  // namespace hil
