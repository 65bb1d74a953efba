// Builders for every device record (see records.hpp).
#include "hil_protocol/records.hpp"

#include "hil_protocol/crc32.hpp"
#include "hil_protocol/json.hpp"
#include "hil_protocol/wire.hpp"

namespace hil {

namespace {

void put_tensor_info(JsonWriter &w, const TensorInfo &t)
{
    w.begin_object().key("name").str(t.name).key("dtype").str(t.dtype).key("shape").begin_array();
    for (int d : t.shape) {
        w.num(d);
    }
    w.end_array().key("exp").num(t.exponent).end_object();
}

}  // namespace

std::string base64(const uint8_t *data, size_t len)
{
    static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((len + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        const uint32_t v = (static_cast<uint32_t>(data[i]) << 16) | (static_cast<uint32_t>(data[i + 1]) << 8) | data[i + 2];
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (len - i == 1) {
        const uint32_t v = static_cast<uint32_t>(data[i]) << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += "==";
    } else if (len - i == 2) {
        const uint32_t v = (static_cast<uint32_t>(data[i]) << 16) | (static_cast<uint32_t>(data[i + 1]) << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string hex(const uint8_t *data, size_t len)
{
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * len);
    for (size_t i = 0; i < len; ++i) {
        out += kHex[data[i] >> 4];
        out += kHex[data[i] & 15];
    }
    return out;
}

std::string boot_record(std::string_view reason, std::string_view app_sha256, std::string_view model_state,
                        std::string_view model_sha256)
{
    JsonWriter w;
    w.begin_object().key("t").str("boot").key("proto").num(kProtocolVersion).key("reason").str(reason);
    w.key("app_sha256").str(app_sha256).key("model").str(model_state).key("model_sha256").str(model_sha256);
    return encode_line(w.end_object().text());
}

std::string info_record(int64_t id, const InfoFields &f)
{
    JsonWriter w;
    w.begin_object().key("t").str("info").key("id").num(id).key("ok").boolean(true);
    w.key("proto").num(kProtocolVersion).key("chip").str(f.chip).key("rev").num(f.rev).key("cores").num(f.cores);
    w.key("idf").str(f.idf).key("espdl").str(f.espdl).key("app_version").str(f.app_version);
    w.key("app_sha256").str(f.app_sha256).key("model").str(f.model_state).key("model_name").str(f.model_name);
    w.key("model_sha256").str(f.model_sha256).key("pack_sha256").str(f.pack_sha256);
    w.key("inputs").begin_array();
    for (const auto &t : f.inputs) {
        put_tensor_info(w, t);
    }
    w.end_array().key("outputs").begin_array();
    for (const auto &t : f.outputs) {
        put_tensor_info(w, t);
    }
    w.end_array().key("heap").begin_object();
    w.key("internal_free").num(static_cast<int64_t>(f.heap.internal_free));
    w.key("internal_min").num(static_cast<int64_t>(f.heap.internal_min));
    w.key("internal_largest").num(static_cast<int64_t>(f.heap.internal_largest));
    w.key("spiram_free").num(static_cast<int64_t>(f.heap.spiram_free));
    w.key("spiram_min").num(static_cast<int64_t>(f.heap.spiram_min));
    w.key("spiram_largest").num(static_cast<int64_t>(f.heap.spiram_largest));
    w.end_object();
    w.key("max_image").num(static_cast<int64_t>(f.max_image)).key("chunk_max").num(f.chunk_max);
    w.key("win_max").num(f.win_max).key("queue").num(f.queue).key("console").str(f.console);
    w.key("selftest").str(f.selftest);
    return encode_line(w.end_object().text());
}

std::string ready_record(int64_t id, uint8_t upload_id, uint32_t chunk, uint32_t window, uint32_t chunks)
{
    JsonWriter w;
    w.begin_object().key("t").str("ready").key("id").num(id).key("up").num(upload_id).key("chunk").num(chunk);
    w.key("win").num(window).key("n").num(chunks);
    return encode_line(w.end_object().text());
}

std::string ack_record(uint8_t upload_id, uint32_t next)
{
    JsonWriter w;
    w.begin_object().key("t").str("ack").key("up").num(upload_id).key("next").num(next);
    return encode_line(w.end_object().text());
}

std::string nak_record(uint8_t upload_id, uint32_t seq)
{
    JsonWriter w;
    w.begin_object().key("t").str("nak").key("up").num(upload_id).key("seq").num(seq);
    return encode_line(w.end_object().text());
}

std::string error_record(int64_t id, std::string_view code, std::string_view message)
{
    JsonWriter w;
    w.begin_object().key("t").str("error").key("id").num(id).key("code").str(code).key("msg").str(message);
    return encode_line(w.end_object().text());
}

std::string detect_record(int64_t id, int width, int height, const std::vector<BoxOut> &boxes, int64_t pre_us,
                          int64_t model_us, int64_t post_us, int64_t upload_us)
{
    JsonWriter w;
    w.begin_object().key("t").str("detect").key("id").num(id).key("ok").boolean(true);
    w.key("w").num(width).key("h").num(height).key("boxes").begin_array();
    for (const auto &b : boxes) {
        w.begin_array().num(b.category).flt(b.score).num(b.x1).num(b.y1).num(b.x2).num(b.y2).end_array();
    }
    w.end_array().key("us").begin_object().key("pre").num(pre_us).key("model").num(model_us);
    w.key("post").num(post_us).end_object().key("upload_us").num(upload_us);
    return encode_line(w.end_object().text());
}

std::string tensor_record(int64_t id, const TensorInfo &t, const uint8_t *data, size_t size)
{
    JsonWriter w;
    w.begin_object().key("t").str("tensor").key("id").num(id).key("name").str(t.name).key("dtype").str(t.dtype);
    w.key("shape").begin_array();
    for (int d : t.shape) {
        w.num(d);
    }
    w.end_array().key("exp").num(t.exponent).key("size").num(static_cast<int64_t>(size));
    w.key("crc").num(crc32(data, size)).key("parts").num(static_cast<int64_t>((size + kDumpPartBytes - 1) / kDumpPartBytes));
    return encode_line(w.end_object().text());
}

std::string part_record(int64_t id, std::string_view name, size_t offset, const uint8_t *data, size_t size)
{
    const size_t n = (size - offset) < kDumpPartBytes ? (size - offset) : kDumpPartBytes;
    JsonWriter w;
    w.begin_object().key("t").str("part").key("id").num(id).key("name").str(name);
    w.key("off").num(static_cast<int64_t>(offset)).key("data").str(base64(data + offset, n));
    return encode_line(w.end_object().text());
}

std::string dump_record(int64_t id, const std::vector<std::string> &names)
{
    JsonWriter w;
    w.begin_object().key("t").str("dump").key("id").num(id).key("ok").boolean(true).key("tensors").begin_array();
    for (const auto &n : names) {
        w.str(n);
    }
    w.end_array();
    return encode_line(w.end_object().text());
}

std::string run_record(int64_t id, uint32_t index, int64_t pre_us, int64_t model_us, int64_t post_us)
{
    JsonWriter w;
    w.begin_object().key("t").str("run").key("id").num(id).key("i").num(index).key("pre").num(pre_us);
    w.key("model").num(model_us).key("post").num(post_us);
    return encode_line(w.end_object().text());
}

std::string bench_record(int64_t id, uint32_t warmup, uint32_t runs)
{
    JsonWriter w;
    w.begin_object().key("t").str("bench").key("id").num(id).key("ok").boolean(true).key("warmup").num(warmup);
    w.key("runs").num(runs);
    return encode_line(w.end_object().text());
}

std::string layer_record(int64_t id, uint32_t index, std::string_view name, std::string_view type, int64_t us)
{
    JsonWriter w;
    w.begin_object().key("t").str("layer").key("id").num(id).key("i").num(index).key("name").str(name);
    w.key("type").str(type).key("us").num(us);
    return encode_line(w.end_object().text());
}

std::string profile_record(int64_t id, uint32_t layers, int64_t total_us)
{
    JsonWriter w;
    w.begin_object().key("t").str("profile").key("id").num(id).key("ok").boolean(true).key("layers").num(layers);
    w.key("total_us").num(total_us);
    return encode_line(w.end_object().text());
}

std::string selftest_record(int64_t id, bool passed, int64_t us)
{
    JsonWriter w;
    w.begin_object().key("t").str("selftest").key("id").num(id).key("ok").boolean(passed).key("us").num(us);
    return encode_line(w.end_object().text());
}

}  // namespace hil
