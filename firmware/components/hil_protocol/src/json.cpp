// Canonical JSON writer and bounded request-object parser (see json.hpp for the rules).
#include "hil_protocol/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace hil {

// ----------------------------------------------------------------------------- writer

void JsonWriter::before_value()
{
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!need_comma_.empty()) {
        if (need_comma_.back()) {
            out_ += ',';
        }
        need_comma_.back() = true;
    }
}

JsonWriter &JsonWriter::begin_object()
{
    before_value();
    out_ += '{';
    need_comma_.push_back(false);
    return *this;
}

JsonWriter &JsonWriter::end_object()
{
    out_ += '}';
    need_comma_.pop_back();
    return *this;
}

JsonWriter &JsonWriter::begin_array()
{
    before_value();
    out_ += '[';
    need_comma_.push_back(false);
    return *this;
}

JsonWriter &JsonWriter::end_array()
{
    out_ += ']';
    need_comma_.pop_back();
    return *this;
}

JsonWriter &JsonWriter::key(std::string_view name)
{
    before_value();
    json_escape(name, out_);
    out_ += ':';
    after_key_ = true;
    return *this;
}

JsonWriter &JsonWriter::str(std::string_view text)
{
    before_value();
    json_escape(text, out_);
    return *this;
}

JsonWriter &JsonWriter::num(int64_t value)
{
    before_value();
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), value);
    out_.append(buf, res.ptr);
    return *this;
}

JsonWriter &JsonWriter::flt(float value)
{
    before_value();
    json_float(value, out_);
    return *this;
}

JsonWriter &JsonWriter::boolean(bool value)
{
    before_value();
    out_ += value ? "true" : "false";
    return *this;
}

JsonWriter &JsonWriter::null()
{
    before_value();
    out_ += "null";
    return *this;
}

void json_float(float value, std::string &out)
{
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
    // "%.9g" of the float32 value: 9 significant digits round-trip any float32, and C's %g is
    // what the Python side reproduces with "%.9g" % value.
    char buf[32];
    int n = std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(value));
    out.append(buf, static_cast<size_t>(n));
}

static void append_u_escape(uint32_t unit, std::string &out)
{
    static const char kHex[] = "0123456789abcdef";
    out += "\\u";
    out += kHex[(unit >> 12) & 0xF];
    out += kHex[(unit >> 8) & 0xF];
    out += kHex[(unit >> 4) & 0xF];
    out += kHex[unit & 0xF];
}

// Decode one UTF-8 sequence at text[i]; returns the code point (U+FFFD for an invalid sequence)
// and advances i past it.
static uint32_t next_code_point(std::string_view text, size_t &i)
{
    const auto b0 = static_cast<uint8_t>(text[i]);
    int extra;
    uint32_t cp;
    uint32_t min;
    if (b0 < 0x80) {
        ++i;
        return b0;
    } else if ((b0 & 0xE0) == 0xC0) {
        extra = 1, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        extra = 2, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        extra = 3, cp = b0 & 0x07, min = 0x10000;
    } else {
        ++i;
        return 0xFFFD;
    }
    if (i + static_cast<size_t>(extra) >= text.size()) {
        ++i;
        return 0xFFFD;
    }
    for (int k = 1; k <= extra; ++k) {
        const auto b = static_cast<uint8_t>(text[i + k]);
        if ((b & 0xC0) != 0x80) {
            ++i;
            return 0xFFFD;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        ++i;
        return 0xFFFD;
    }
    i += static_cast<size_t>(extra) + 1;
    return cp;
}

void json_escape(std::string_view text, std::string &out)
{
    out += '"';
    size_t i = 0;
    while (i < text.size()) {
        const uint32_t cp = next_code_point(text, i);
        switch (cp) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (cp >= 0x20 && cp <= 0x7E) {
                out += static_cast<char>(cp);
            } else if (cp <= 0xFFFF) {
                append_u_escape(cp, out);
            } else {
                const uint32_t v = cp - 0x10000;
                append_u_escape(0xD800 | (v >> 10), out);
                append_u_escape(0xDC00 | (v & 0x3FF), out);
            }
        }
    }
    out += '"';
}

// ----------------------------------------------------------------------------- parser

namespace {

class Parser {
public:
    explicit Parser(std::string_view text) : t_(text) {}

    bool fail(const char *why)
    {
        if (error_ == nullptr) {
            error_ = why;
        }
        return false;
    }

    void ws()
    {
        while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\t' || t_[p_] == '\n' || t_[p_] == '\r')) {
            ++p_;
        }
    }

    bool lit(const char *word)
    {
        const size_t n = std::strlen(word);
        if (t_.substr(p_, n) != word) {
            return fail("invalid literal");
        }
        p_ += n;
        return true;
    }

    static void put_utf8(uint32_t cp, std::string &out)
    {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    bool hex4(uint32_t *out)
    {
        if (p_ + 4 > t_.size()) {
            return fail("short \\u escape");
        }
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = t_[p_++];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= static_cast<uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= static_cast<uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= static_cast<uint32_t>(c - 'A' + 10);
            } else {
                return fail("bad \\u escape");
            }
        }
        *out = v;
        return true;
    }

    bool string(std::string *out)
    {
        if (p_ >= t_.size() || t_[p_] != '"') {
            return fail("expected string");
        }
        ++p_;
        while (p_ < t_.size()) {
            const auto c = static_cast<uint8_t>(t_[p_++]);
            if (c == '"') {
                return true;
            }
            if (c < 0x20) {
                return fail("control character in string");
            }
            if (c != '\\') {
                if (out) {
                    *out += static_cast<char>(c);
                }
                continue;
            }
            if (p_ >= t_.size()) {
                break;
            }
            const char e = t_[p_++];
            char simple = 0;
            switch (e) {
            case '"': simple = '"'; break;
            case '\\': simple = '\\'; break;
            case '/': simple = '/'; break;
            case 'b': simple = '\b'; break;
            case 'f': simple = '\f'; break;
            case 'n': simple = '\n'; break;
            case 'r': simple = '\r'; break;
            case 't': simple = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (!hex4(&cp)) {
                    return false;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF && p_ + 1 < t_.size() && t_[p_] == '\\' && t_[p_ + 1] == 'u') {
                    const size_t save = p_;
                    p_ += 2;
                    uint32_t lo;
                    if (!hex4(&lo)) {
                        return false;
                    }
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else {
                        p_ = save;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 0xFFFD;  // lone surrogate
                }
                if (out) {
                    put_utf8(cp, *out);
                }
                continue;
            }
            default: return fail("bad escape");
            }
            if (out) {
                *out += simple;
            }
        }
        return fail("unterminated string");
    }

    bool number(JsonScalar *out)
    {
        const size_t start = p_;
        if (p_ < t_.size() && t_[p_] == '-') {
            ++p_;
        }
        if (p_ >= t_.size() || !(t_[p_] >= '0' && t_[p_] <= '9')) {
            return fail("bad number");
        }
        if (t_[p_] == '0') {
            ++p_;
        } else {
            while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
                ++p_;
            }
        }
        bool is_float = false;
        if (p_ < t_.size() && t_[p_] == '.') {
            is_float = true;
            ++p_;
            if (p_ >= t_.size() || !(t_[p_] >= '0' && t_[p_] <= '9')) {
                return fail("bad fraction");
            }
            while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
                ++p_;
            }
        }
        if (p_ < t_.size() && (t_[p_] == 'e' || t_[p_] == 'E')) {
            is_float = true;
            ++p_;
            if (p_ < t_.size() && (t_[p_] == '+' || t_[p_] == '-')) {
                ++p_;
            }
            if (p_ >= t_.size() || !(t_[p_] >= '0' && t_[p_] <= '9')) {
                return fail("bad exponent");
            }
            while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
                ++p_;
            }
        }
        if (out == nullptr) {
            return true;
        }
        const char *first = t_.data() + start;
        const char *last = t_.data() + p_;
        if (!is_float) {
            int64_t v;
            auto res = std::from_chars(first, last, v);
            if (res.ec != std::errc() || res.ptr != last) {
                return fail("integer out of range");
            }
            out->type = JsonScalar::kInt;
            out->i = v;
            out->d = static_cast<double>(v);
            return true;
        }
        // strtod needs a terminated string; numbers are short.
        char buf[64];
        const size_t n = static_cast<size_t>(last - first);
        if (n >= sizeof(buf)) {
            return fail("number too long");
        }
        std::memcpy(buf, first, n);
        buf[n] = '\0';
        out->type = JsonScalar::kFloat;
        out->d = std::strtod(buf, nullptr);
        if (!std::isfinite(out->d)) {
            return fail("number out of range");
        }
        return true;
    }

    // Parse any value; store it in `out` when it is a scalar (nested values only validated).
    bool value(JsonScalar *out, int depth)
    {
        ws();
        if (p_ >= t_.size()) {
            return fail("unexpected end");
        }
        const char c = t_[p_];
        if (c == '{' || c == '[') {
            if (depth >= JsonObject::kMaxDepth) {
                return fail("nesting too deep");
            }
            if (out) {
                out->type = JsonScalar::kNested;
            }
            return c == '{' ? object(nullptr, depth + 1) : array(depth + 1);
        }
        if (c == '"') {
            if (out) {
                out->type = JsonScalar::kString;
            }
            return string(out ? &out->s : nullptr);
        }
        if (c == 't' || c == 'f') {
            if (out) {
                out->type = JsonScalar::kBool;
                out->b = (c == 't');
            }
            return lit(c == 't' ? "true" : "false");
        }
        if (c == 'n') {
            if (out) {
                out->type = JsonScalar::kNull;
            }
            return lit("null");
        }
        return number(out);
    }

    bool array(int depth)
    {
        ++p_;  // '['
        ws();
        if (p_ < t_.size() && t_[p_] == ']') {
            ++p_;
            return true;
        }
        while (true) {
            if (!value(nullptr, depth)) {
                return false;
            }
            ws();
            if (p_ >= t_.size()) {
                return fail("unterminated array");
            }
            if (t_[p_] == ',') {
                ++p_;
                continue;
            }
            if (t_[p_] == ']') {
                ++p_;
                return true;
            }
            return fail("expected , or ]");
        }
    }

    bool object(std::vector<std::pair<std::string, JsonScalar>> *members, int depth)
    {
        ++p_;  // '{'
        ws();
        if (p_ < t_.size() && t_[p_] == '}') {
            ++p_;
            return true;
        }
        while (true) {
            ws();
            std::string name;
            if (!string(members ? &name : nullptr)) {
                return false;
            }
            ws();
            if (p_ >= t_.size() || t_[p_] != ':') {
                return fail("expected :");
            }
            ++p_;
            if (members) {
                if (members->size() >= JsonObject::kMaxMembers) {
                    return fail("too many members");
                }
                JsonScalar v;
                if (!value(&v, depth)) {
                    return false;
                }
                members->emplace_back(std::move(name), std::move(v));
            } else if (!value(nullptr, depth)) {
                return false;
            }
            ws();
            if (p_ >= t_.size()) {
                return fail("unterminated object");
            }
            if (t_[p_] == ',') {
                ++p_;
                continue;
            }
            if (t_[p_] == '}') {
                ++p_;
                return true;
            }
            return fail("expected , or }");
        }
    }

    bool top(std::vector<std::pair<std::string, JsonScalar>> *members)
    {
        ws();
        if (p_ >= t_.size() || t_[p_] != '{') {
            return fail("not an object");
        }
        if (!object(members, 1)) {
            return false;
        }
        ws();
        return p_ == t_.size() ? true : fail("trailing characters");
    }

    const char *error_ = nullptr;

private:
    std::string_view t_;
    size_t p_ = 0;
};

}  // namespace

bool JsonObject::parse(std::string_view text, std::string *error)
{
    members_.clear();
    Parser parser(text);
    if (!parser.top(&members_)) {
        members_.clear();
        if (error) {
            *error = parser.error_ ? parser.error_ : "invalid JSON";
        }
        return false;
    }
    return true;
}

const JsonScalar *JsonObject::get(std::string_view name) const
{
    // Last one wins for duplicate keys, as in Python's json module.
    for (auto it = members_.rbegin(); it != members_.rend(); ++it) {
        if (it->first == name) {
            return &it->second;
        }
    }
    return nullptr;
}

bool JsonObject::get_string(std::string_view name, std::string *out) const
{
    const JsonScalar *v = get(name);
    if (v == nullptr || v->type != JsonScalar::kString) {
        return false;
    }
    *out = v->s;
    return true;
}

bool JsonObject::get_int(std::string_view name, int64_t *out) const
{
    const JsonScalar *v = get(name);
    if (v == nullptr || v->type != JsonScalar::kInt) {
        return false;
    }
    *out = v->i;
    return true;
}

bool JsonObject::get_number(std::string_view name, double *out) const
{
    const JsonScalar *v = get(name);
    if (v == nullptr || (v->type != JsonScalar::kInt && v->type != JsonScalar::kFloat)) {
        return false;
    }
    *out = v->d;
    return true;
}

bool JsonObject::get_bool(std::string_view name, bool *out) const
{
    const JsonScalar *v = get(name);
    if (v == nullptr || v->type != JsonScalar::kBool) {
        return false;
    }
    *out = v->b;
    return true;
}

}  // namespace hil
