// Native tests of the hil_protocol component, driven by tests/host/protocol/test_protocol_cpp.py.
//
//   hil_protocol_test unit             unit checks of every module
//   hil_protocol_test encode DIR       build every golden record and compare with DIR/<name>.bin
//   hil_protocol_test decode FILE...   decode each file with a fresh RequestDecoder; print events
//                                      as JSON lines ({"file":...} before each file's events)
//   hil_protocol_test serve [--compute-us=N] FILE...
//                                      run each file through a Service with FakeBackend (64-byte
//                                      slices, 1 ms per slice; queued detects take N us); print every
//                                      record it sends
// The golden values below are the ones tools/make_golden_frames.py uses.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "hil_protocol/crc32.hpp"
#include "hil_protocol/decoder.hpp"
#include "hil_protocol/json.hpp"
#include "hil_protocol/pdl3.hpp"
#include "hil_protocol/records.hpp"
#include "hil_protocol/service.hpp"
#include "fake_backend.hpp"
#include "hil_protocol/upload.hpp"
#include "hil_protocol/wire.hpp"

using namespace hil;

static int g_failures = 0;
static int g_checks = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        ++g_checks;                                                              \
        if (!(cond)) {                                                           \
            ++g_failures;                                                        \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

static std::vector<uint8_t> read_file(const std::string &path, bool *ok)
{
    std::ifstream in(path, std::ios::binary);
    *ok = static_cast<bool>(in);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

static std::vector<uint8_t> pattern(size_t n, unsigned mul, unsigned add)
{
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) {
        v[i] = static_cast<uint8_t>((i * mul + add) & 0xFF);
    }
    return v;
}

// ------------------------------------------------------------------ golden records

static std::vector<std::pair<std::string, std::string>> golden_records()
{
    const std::string sha_a(64, ' '), sha_b(64, ' '), sha_c(64, ' ');
    auto rep = [](const char *two) {
        std::string s;
        for (int i = 0; i < 32; ++i) {
            s += two;
        }
        return s;
    };
    const std::string A = rep("a3"), B = rep("5e"), C = rep("0f");
    std::vector<std::pair<std::string, std::string>> out;
    out.emplace_back("rec_boot", boot_record("poweron", A, "ok", B));
    InfoFields f;
    f.chip = "esp32p4";
    f.rev = 100;
    f.cores = 2;
    f.idf = "v5.5.1";
    f.espdl = "3.3.9";
    f.app_version = "0.1.0";
    f.app_sha256 = A;
    f.model_state = "ok";
    f.model_name = "yolo11n.espdl";
    f.model_sha256 = B;
    f.pack_sha256 = C;
    f.inputs = {{"images", "int8", {1, 640, 640, 3}, -7}};
    f.outputs = {{"box0", "int8", {1, 80, 80, 64}, -3}, {"score0", "int8", {1, 80, 80, 80}, -2}};
    f.heap = {401232, 380000, 245760, 25165824, 18000000, 16777216};
    f.max_image = 1228800;
    f.chunk_max = 8192;
    f.win_max = 16;
    f.queue = 2;
    f.console = "uart";
    f.selftest = "pass";
    out.emplace_back("rec_info", info_record(1, f));
    out.emplace_back("rec_ready", ready_record(3, 17, 4096, 16, 225));
    out.emplace_back("rec_ack", ack_record(17, 42));
    out.emplace_back("rec_nak", nak_record(17, 7));
    std::vector<BoxOut> boxes = {{0, 0.893309832f, 12, 40, 300, 470},
                                 {5, 0.320821315f, 0, 0, 639, 479},
                                 {79, 1.0f, 1, 2, 3, 4},
                                 {2, 1.0e-5f, 100, 101, 102, 103}};
    out.emplace_back("rec_detect", detect_record(3, 640, 480, boxes, 15873, 2535301, 14210, 4712345));
    const std::vector<uint8_t> dump = pattern(40, 11, 250);
    TensorInfo t{"score0", "int8", {1, 2, 4, 5}, -2};
    out.emplace_back("rec_tensor", tensor_record(4, t, dump.data(), dump.size()));
    out.emplace_back("rec_part", part_record(4, "score0", 0, dump.data(), dump.size()));
    out.emplace_back("rec_dump", dump_record(4, {"images", "box0", "score0"}));
    out.emplace_back("rec_run", run_record(5, 0, 15980, 2535410, 14333));
    out.emplace_back("rec_bench", bench_record(5, 2, 10));
    out.emplace_back("rec_layer", layer_record(6, 0, "/model.0/conv/Conv \"q\"\\", "Conv", 51234));
    out.emplace_back("rec_profile", profile_record(6, 249, 2541000));
    out.emplace_back("rec_selftest", selftest_record(2, true, 2600123));
    out.emplace_back("rec_error", error_record(0, "bad_crc", "request CRC mismatch\n(\xc2\xb5" "C \xe2\x82\xac)\t\x01"));
    out.emplace_back("rec_error_busy", error_record(8, "busy", "the device holds 2 queued images (its queue is 2): "
                                                              "wait for a detect answer before the next upload"));
    return out;
}

static int cmd_encode(const std::string &dir)
{
    int bad = 0;
    for (const auto &[name, line] : golden_records()) {
        bool ok;
        const auto want = read_file(dir + "/" + name + ".bin", &ok);
        const bool same = ok && want.size() == line.size() && std::memcmp(want.data(), line.data(), line.size()) == 0;
        std::printf("%s %s\n", same ? "ok" : "MISMATCH", name.c_str());
        if (!same) {
            ++bad;
            std::fprintf(stderr, "  want: %.*s  got:  %s", static_cast<int>(want.size()),
                         reinterpret_cast<const char *>(want.data()), line.c_str());
        }
    }
    // Chunk frames are host-side, but the C++ encoder must agree too.
    const auto small = pattern(48, 7, 3);
    const auto last = pattern(5, 1, 0xFD);
    const std::pair<std::string, std::vector<uint8_t>> chunks[] = {
        {"chunk_small", encode_chunk(17, 3, small.data(), small.size())},
        {"chunk_last", encode_chunk(255, 299, last.data(), last.size())}};
    for (const auto &[name, frame] : chunks) {
        bool ok;
        const bool same = read_file(dir + "/" + name + ".bin", &ok) == frame && ok;
        std::printf("%s %s\n", same ? "ok" : "MISMATCH", name.c_str());
        bad += same ? 0 : 1;
    }
    return bad == 0 ? 0 : 1;
}

// ------------------------------------------------------------------ decode (events as JSON lines)

static void print_event(const DecoderEvent &ev)
{
    std::string line;
    if (ev.kind == DecoderEvent::kRequest) {
        JsonObject obj;
        std::string err;
        const bool parsed = obj.parse(ev.body, &err);
        std::string t;
        obj.get_string("t", &t);
        line = "{\"event\":\"record\",\"parsed\":" + std::string(parsed ? "true" : "false") + ",\"t\":";
        json_escape(t, line);
        line += ",\"body\":" + std::string(ev.body) + "}";
    } else if (ev.kind == DecoderEvent::kChunk) {
        line = "{\"event\":\"chunk\",\"up\":" + std::to_string(ev.upload_id) + ",\"seq\":" + std::to_string(ev.seq) +
               ",\"payload_hex\":\"" + hex(ev.payload, ev.payload_len) + "\"}";
    } else {
        line = "{\"event\":\"bad\",\"up\":" + (ev.has_header ? std::to_string(ev.upload_id) : std::string("null")) +
               ",\"seq\":" + (ev.has_header ? std::to_string(ev.seq) : std::string("null")) + "}";
    }
    std::printf("%s\n", line.c_str());
}

static int cmd_decode(int argc, char **argv)
{
    for (int i = 0; i < argc; ++i) {
        bool ok;
        const auto data = read_file(argv[i], &ok);
        if (!ok) {
            std::fprintf(stderr, "cannot read %s\n", argv[i]);
            return 2;
        }
        std::string head = "{\"file\":";
        json_escape(argv[i], head);
        std::printf("%s}\n", head.c_str());
        RequestDecoder dec;
        // Feed in irregular slices to exercise partial frames.
        size_t pos = 0, step = 1;
        while (pos < data.size()) {
            const size_t n = std::min(step, data.size() - pos);
            dec.feed(data.data() + pos, n, print_event);
            pos += n;
            step = step * 3 % 97 + 1;
        }
    }
    return 0;
}

// ------------------------------------------------------------------ serve (Service + FakeBackend)

// The limits tests/host/protocol/test_protocol_device.py gives the Python DeviceService too.
static Limits serve_limits()
{
    Limits lim;
    lim.max_image = 30000;
    lim.chunk_max = 1000;
    lim.window_max = 8;
    lim.rx_buffer = 4000;
    lim.upload_timeout_ms = 500;
    return lim;
}

static int cmd_serve(int argc, char **argv)
{
    int64_t compute_us = 0;
    const std::string flag = "--compute-us=";
    if (argc > 0 && std::string(argv[0]).rfind(flag, 0) == 0) {
        compute_us = std::atoll(argv[0] + flag.size());
        ++argv;
        --argc;
    }
    for (int i = 0; i < argc; ++i) {
        bool ok;
        const auto data = read_file(argv[i], &ok);
        if (!ok) {
            return 2;
        }
        std::printf("=== %s\n", argv[i]);
        FakeBackend fb;
        fb.compute_us = compute_us;
        Service svc(fb, serve_limits());
        for (size_t pos = 0; pos < data.size(); pos += 64) {
            svc.feed(data.data() + pos, std::min<size_t>(64, data.size() - pos));
            fb.clock_us += 1000;
            svc.poll();
            for (const auto &line : fb.sent) {
                std::fwrite(line.data(), 1, line.size(), stdout);
            }
            fb.sent.clear();
        }
    }
    return 0;
}

// ------------------------------------------------------------------ unit checks

static void unit_crc()
{
    CHECK(crc32("123456789", 9) == 0xCBF43926U);
    CHECK(crc32("", 0) == 0);
    const uint32_t part = crc32("12345", 5);
    CHECK(crc32("6789", 4, part) == 0xCBF43926U);
}

static void unit_json()
{
    JsonObject o;
    std::string err;
    CHECK(o.parse(R"({"t":"detect","id":3,"score":0.25,"x":[1,{"a":2}],"b":true,"n":null,"s":"a\u00b5\n"})", &err));
    std::string s;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    CHECK(o.get_string("t", &s) && s == "detect");
    CHECK(o.get_int("id", &i) && i == 3);
    CHECK(!o.get_int("score", &i));
    CHECK(o.get_number("score", &d) && d == 0.25);
    CHECK(o.get_bool("b", &b) && b);
    CHECK(o.get("x") && o.get("x")->type == JsonScalar::kNested);
    CHECK(o.get_string("s", &s) && s == "a\xc2\xb5\n");
    const char *bad[] = {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":01}", "{\"a\":1} x",
                         "{\"a\":\"\x01\"}", "{\"a\":NaN}", "{\"a\":1e999}", "{\"a\":99999999999999999999}",
                         "{\"a\":[[[[[[[[[[1]]]]]]]]]]}", "{\"a\":tru}", "{\"a\":\"\\x\"}"};
    for (const char *text : bad) {
        CHECK(!o.parse(text, &err));
    }
    JsonWriter w;
    w.begin_object().key("a").begin_array().num(-1).flt(0.5f).flt(NAN).boolean(false).null().end_array();
    w.key("b").str("\xff").end_object();
    CHECK(w.text() == "{\"a\":[-1,0.5,null,false,null],\"b\":\"\\ufffd\"}");
    std::string esc;
    json_escape("\xf0\x9f\x98\x80", esc);  // U+1F600 -> surrogate pair
    CHECK(esc == "\"\\ud83d\\ude00\"");
}

static void unit_line()
{
    const std::string line = encode_line("{\"t\":\"info\",\"id\":1}");
    std::string_view body;
    CHECK(check_line(line, &body) == LineStatus::kOk && body == "{\"t\":\"info\",\"id\":1}");
    std::string crlf = line;
    crlf.insert(crlf.size() - 1, "\r");
    CHECK(check_line(crlf, &body) == LineStatus::kOk);
    for (size_t k = 0; k + 1 < line.size(); ++k) {  // every single-bit flip is caught
        std::string bad = line;
        bad[k] = static_cast<char>(bad[k] ^ 0x04);
        CHECK(check_line(bad, &body) != LineStatus::kOk);
    }
}

static void unit_decoder_bounds()
{
    // Garbage, an endless line and a huge chunk header never grow the buffer past its capacity.
    RequestDecoder dec(64);
    std::mt19937 rng(7);
    std::vector<uint8_t> junk(200000);
    for (auto &c : junk) {
        c = static_cast<uint8_t>(rng());
    }
    size_t events = 0;
    dec.feed(junk.data(), junk.size(), [&](const DecoderEvent &) { ++events; });
    CHECK(dec.buffered() <= dec.capacity());
    std::string endless = "@HIL ";
    endless += std::string(5000, 'x');
    size_t bads = 0;
    dec.feed(reinterpret_cast<const uint8_t *>(endless.data()), endless.size(),
             [&](const DecoderEvent &e) { bads += e.kind == DecoderEvent::kBad; });
    CHECK(bads >= 1);
    CHECK(dec.buffered() <= dec.capacity());
    // A request split over many feeds arrives once.
    const std::string req = encode_line("{\"t\":\"selftest\",\"id\":9}");
    size_t reqs = 0;
    RequestDecoder d2;
    for (char c : req) {
        const auto byte = static_cast<uint8_t>(c);
        d2.feed(&byte, 1, [&](const DecoderEvent &e) { reqs += e.kind == DecoderEvent::kRequest; });
    }
    CHECK(reqs == 1);
}

static void unit_upload()
{
    // Random loss and corruption on a FIFO link; the receiver must end with the exact image.
    std::mt19937 rng(11);
    std::vector<uint8_t> image(100000);
    for (auto &c : image) {
        c = static_cast<uint8_t>(rng());
    }
    std::vector<uint8_t> dest(image.size(), 0);
    const size_t chunk = 1000;
    const uint32_t n = static_cast<uint32_t>((image.size() + chunk - 1) / chunk);
    UploadReceiver rx;
    rx.begin(9, dest.data(), dest.size(), chunk);
    RequestDecoder dec(chunk);
    std::vector<std::string> replies;
    std::vector<uint8_t> nak_seen(n, 0);
    auto on_event = [&](const DecoderEvent &e) {
        if (e.kind == DecoderEvent::kChunk) {
            rx.on_chunk(e.upload_id, e.seq, e.payload, e.payload_len, replies);
        } else if (e.kind == DecoderEvent::kBad && e.has_header) {
            rx.on_bad_frame(e.upload_id, e.seq, replies);
        }
    };
    std::vector<uint32_t> queue;
    for (uint32_t s = 0; s < n; ++s) {
        queue.push_back(s);
    }
    int rounds = 0;
    while (!rx.complete() && rounds++ < 50) {
        for (uint32_t s : queue) {
            auto frame = encode_chunk(9, s, image.data() + s * chunk, std::min(chunk, image.size() - s * chunk));
            const unsigned roll = rng() % 10;
            if (roll == 0) {
                continue;  // lost
            }
            if (roll == 1) {
                frame[rng() % frame.size()] ^= 0x20;  // corrupted
            }
            dec.feed(frame.data(), frame.size(), on_event);
        }
        queue.clear();
        // Retransmit everything NAKed plus, as a timeout would, the first missing chunk.
        for (const auto &r : replies) {
            JsonObject o;
            std::string_view body;
            std::string t;
            int64_t seq;
            if (check_line(r, &body) == LineStatus::kOk && o.parse(body, nullptr) && o.get_string("t", &t) &&
                t == "nak" && o.get_int("seq", &seq)) {
                queue.push_back(static_cast<uint32_t>(seq));
            }
        }
        replies.clear();
        if (rx.next() < n) {
            queue.push_back(rx.next());
        }
    }
    CHECK(rx.complete());
    CHECK(dest == image);
}

static void unit_pdl3()
{
    // A synthetic pack: one EDL2 model of 16 + 20 bytes, padded to 48.
    const std::string name = "m.espdl";
    std::vector<uint8_t> pack(80 + 48, 0);
    std::memcpy(pack.data(), "PDL3", 4);
    std::memcpy(pack.data() + 4, "v1.0", 4);
    auto put32 = [&](size_t off, uint32_t v) {
        for (int k = 0; k < 4; ++k) {
            pack[off + k] = static_cast<uint8_t>(v >> (8 * k));
        }
    };
    put32(20, static_cast<uint32_t>(pack.size()));
    put32(56, 1);
    put32(60, 80);
    put32(64, 72);
    put32(68, static_cast<uint32_t>(name.size()));
    std::memcpy(pack.data() + 72, name.data(), name.size());
    std::memcpy(pack.data() + 80, "EDL2", 4);
    put32(88, 20);
    Pdl3Header h;
    std::string err;
    CHECK(parse_pdl3(pack.data(), pack.size(), &h, &err));
    CHECK(h.version == "v1.0" && h.entries.size() == 1 && h.entries[0].name == name);
    CHECK(h.entries[0].file_size == 36 && h.entries[0].data_offset == 80);
    put32(88, 40);  // sub-model longer than the package
    CHECK(!parse_pdl3(pack.data(), pack.size(), &h, &err));
    CHECK(!parse_pdl3(pack.data(), 10, &h, &err));
}

// Decode what the service sent: the "t" of each record (and the record objects).
static std::vector<JsonObject> take(FakeBackend &fb, std::vector<std::string> *types)
{
    std::vector<JsonObject> out;
    types->clear();
    for (const auto &line : fb.sent) {
        std::string_view body;
        JsonObject o;
        std::string t;
        CHECK(check_line(line, &body) == LineStatus::kOk);
        CHECK(o.parse(body, nullptr));
        o.get_string("t", &t);
        types->push_back(t);
        out.push_back(o);
    }
    fb.sent.clear();
    return out;
}

static void send_req(Service &svc, const std::string &json)
{
    const std::string line = encode_line(json);
    svc.feed(reinterpret_cast<const uint8_t *>(line.data()), line.size());
}

static std::string error_code(const JsonObject &o)
{
    std::string c;
    o.get_string("code", &c);
    return c;
}

static void unit_service()
{
    FakeBackend fb;
    Limits lim = serve_limits();
    Service svc(fb, lim);
    std::vector<std::string> types;

    // Every malformed request gets exactly one error record.
    std::string bad = encode_line("{\"t\":\"info\",\"id\":1}");
    bad[8] ^= 1;
    svc.feed(reinterpret_cast<const uint8_t *>(bad.data()), bad.size());
    send_req(svc, "{\"t\":\"info\",\"id\":1");
    send_req(svc, "{\"t\":\"info\"}");
    send_req(svc, "{\"t\":\"reboot\",\"id\":2}");
    send_req(svc, "{\"t\":\"bench\",\"id\":3,\"runs\":0}");
    send_req(svc, "{\"t\":\"bench\",\"id\":4}");
    send_req(svc, "{\"t\":\"dump\",\"id\":5}");
    send_req(svc, "{\"t\":\"detect\",\"id\":6,\"w\":100,\"h\":100,\"fmt\":\"rgb888\",\"size\":30000,\"crc\":1}");
    send_req(svc, "{\"t\":\"detect\",\"id\":7,\"w\":200,\"h\":100,\"fmt\":\"rgb888\",\"size\":60000,\"crc\":1}");
    send_req(svc, "{\"t\":\"detect\",\"id\":8,\"w\":10,\"h\":10,\"fmt\":\"bgr888\",\"size\":300,\"crc\":1}");
    auto recs = take(fb, &types);
    const std::vector<std::string> want_codes = {"bad_crc", "bad_json", "bad_request", "unknown_request", "bad_request",
                                                 "no_image", "no_image", "too_large", "bad_request"};
    CHECK(recs.size() == want_codes.size() + 2);  // + the "ready" of id 6 and its upload_aborted (by id 7)
    std::vector<std::string> codes;
    for (size_t i = 0; i < recs.size(); ++i) {
        if (types[i] == "error") {
            codes.push_back(error_code(recs[i]));
        }
    }
    CHECK(types.size() > 7 && types[7] == "ready");
    CHECK(codes.size() == 10 && codes[7] == "upload_aborted" && codes[8] == "too_large" && codes[9] == "bad_request");
    CHECK(fb.allocated == 0);

    // A model problem is reported before any upload.
    fb.model_code = "model_sha256";
    send_req(svc, "{\"t\":\"selftest\",\"id\":9}");
    recs = take(fb, &types);
    CHECK(recs.size() == 1 && error_code(recs[0]) == "model_sha256");
    fb.model_code = nullptr;

    // A lossy upload completes; the detect record follows the last ack.
    std::vector<uint8_t> img(20 * 30 * 3);
    for (size_t i = 0; i < img.size(); ++i) {
        img[i] = static_cast<uint8_t>(i * 31);
    }
    const uint32_t crc = crc32(img.data(), img.size());
    send_req(svc, "{\"t\":\"detect\",\"id\":10,\"w\":20,\"h\":30,\"fmt\":\"rgb888\",\"size\":1800,\"crc\":" +
                      std::to_string(crc) + ",\"chunk\":500,\"win\":64}");
    recs = take(fb, &types);
    int64_t up = 0, chunk = 0, win = 0, n = 0;
    CHECK(types.size() == 1 && types[0] == "ready");
    recs[0].get_int("up", &up);
    recs[0].get_int("chunk", &chunk);
    recs[0].get_int("win", &win);
    recs[0].get_int("n", &n);
    CHECK(chunk == 500 && win == 7 && n == 4);  // window bounded by rx_buffer / (chunk + 14)
    for (uint32_t sidx : {0U, 2U, 1U, 1U, 3U}) {  // 1 arrives late (gap -> nak), then a duplicate
        auto f = encode_chunk(static_cast<uint8_t>(up), sidx, img.data() + sidx * 500, std::min<size_t>(500, img.size() - sidx * 500));
        svc.feed(f.data(), f.size());
    }
    recs = take(fb, &types);
    const std::vector<std::string> want = {"ack", "nak", "ack", "ack", "ack", "detect"};
    CHECK(types == want);
    CHECK(!svc.uploading());

    send_req(svc, "{\"t\":\"bench\",\"id\":11,\"warmup\":2,\"runs\":3}");
    send_req(svc, "{\"t\":\"dump\",\"id\":12}");
    recs = take(fb, &types);
    const std::vector<std::string> want2 = {"run", "run", "run", "bench", "tensor", "part", "tensor", "part", "part", "dump"};
    CHECK(types == want2);
    send_req(svc, "{\"t\":\"profile\",\"id\":13}");
    send_req(svc, "{\"t\":\"dump\",\"id\":14}");
    recs = take(fb, &types);
    const std::vector<std::string> want3 = {"layer", "layer", "profile", "error"};
    CHECK(types == want3);

    // A stalled upload expires; a corrupted image fails its whole-image CRC.
    send_req(svc, "{\"t\":\"detect\",\"id\":15,\"w\":20,\"h\":30,\"fmt\":\"rgb888\",\"size\":1800,\"crc\":5}");
    fb.clock_us += 400000;
    svc.poll();
    CHECK(svc.uploading());
    fb.clock_us += 200000;
    svc.poll();
    CHECK(!svc.uploading());
    recs = take(fb, &types);
    CHECK(types.size() == 2 && error_code(recs[1]) == "upload_timeout");
    send_req(svc, "{\"t\":\"detect\",\"id\":16,\"w\":20,\"h\":30,\"fmt\":\"rgb888\",\"size\":1800,\"crc\":5}");
    recs = take(fb, &types);
    recs[0].get_int("up", &up);
    recs[0].get_int("chunk", &chunk);
    for (uint32_t sidx = 0; static_cast<size_t>(sidx * chunk) < img.size(); ++sidx) {
        auto f = encode_chunk(static_cast<uint8_t>(up), sidx, img.data() + sidx * chunk,
                              std::min<size_t>(static_cast<size_t>(chunk), img.size() - sidx * chunk));
        svc.feed(f.data(), f.size());
    }
    recs = take(fb, &types);
    CHECK(!types.empty() && types.back() == "error" && error_code(recs.back()) == "image_crc");
    CHECK(fb.allocated == 0);
}

static void send_image(Service &svc, const JsonObject &ready, const std::vector<uint8_t> &img)
{
    int64_t up = 0, chunk = 0;
    ready.get_int("up", &up);
    ready.get_int("chunk", &chunk);
    for (uint32_t sidx = 0; static_cast<size_t>(sidx * chunk) < img.size(); ++sidx) {
        auto f = encode_chunk(static_cast<uint8_t>(up), sidx, img.data() + sidx * chunk,
                              std::min<size_t>(static_cast<size_t>(chunk), img.size() - sidx * chunk));
        svc.feed(f.data(), f.size());
    }
}

static std::vector<int64_t> ids_of(const std::vector<JsonObject> &recs, const std::vector<std::string> &types,
                                   const std::string &type)
{
    std::vector<int64_t> out;
    for (size_t i = 0; i < recs.size(); ++i) {
        int64_t id = 0;
        if (types[i] == type && recs[i].get_int("id", &id)) {
            out.push_back(id);
        }
    }
    return out;
}

// Queued detects (protocol 2): two images held at most, answers in request order, busy for a third.
static void unit_service_queue()
{
    FakeBackend fb;
    fb.compute_us = 100000;
    Service svc(fb, serve_limits());
    std::vector<std::string> types;
    std::vector<uint8_t> img(20 * 30 * 3);
    for (size_t i = 0; i < img.size(); ++i) {
        img[i] = static_cast<uint8_t>(i * 7 + 1);
    }
    const std::string q = "{\"t\":\"detect\",\"id\":ID,\"w\":20,\"h\":30,\"fmt\":\"rgb888\",\"size\":1800,\"crc\":" +
                          std::to_string(crc32(img.data(), img.size())) + ",\"chunk\":500,\"queue\":true}";
    auto queued = [&](int id) {
        std::string r = q;
        r.replace(r.find("ID"), 2, std::to_string(id));
        send_req(svc, r);
    };

    queued(20);
    auto recs = take(fb, &types);
    CHECK(types.size() == 1 && types[0] == "ready");
    send_image(svc, recs[0], img);
    svc.poll();
    recs = take(fb, &types);
    CHECK(types == std::vector<std::string>(4, "ack"));  // computing: no answer yet
    CHECK(svc.computing() && fb.job_active);

    queued(21);  // uploads while 20 computes
    recs = take(fb, &types);
    CHECK(types.size() == 1 && types[0] == "ready");
    send_image(svc, recs[0], img);
    svc.poll();
    take(fb, &types);
    CHECK(svc.images_held() == 2 && fb.buffers.size() == 2);

    queued(22);  // a third image: refused, nothing allocated
    recs = take(fb, &types);
    CHECK(types.size() == 1 && types[0] == "error" && error_code(recs[0]) == "busy");
    CHECK(svc.images_held() == 2 && fb.buffers.size() == 2);

    fb.clock_us += 100000;  // 20 finishes: answered, 21 starts, 20's buffer is freed
    svc.poll();
    recs = take(fb, &types);
    CHECK(ids_of(recs, types, "detect") == std::vector<int64_t>{20});
    CHECK(svc.images_held() == 1 && fb.buffers.size() == 1 && fb.job_active);

    queued(23);
    recs = take(fb, &types);
    CHECK(types.size() == 1 && types[0] == "ready");
    send_image(svc, recs[0], img);
    take(fb, &types);
    send_req(svc, "{\"t\":\"info\",\"id\":24}");  // waits for 21 and 23: their answers come first, in order
    recs = take(fb, &types);
    const std::vector<std::string> want = {"detect", "detect", "info"};
    CHECK(types == want);
    CHECK(ids_of(recs, types, "detect") == (std::vector<int64_t>{21, 23}));
    int64_t depth = 0;
    CHECK(recs.size() == 3 && recs[2].get_int("queue", &depth) && depth == 2);
    CHECK(!svc.computing() && svc.images_held() == 1);
    send_req(svc, "{\"t\":\"dump\",\"id\":25}");
    take(fb, &types);
    CHECK(!types.empty() && types.back() == "dump");

    // A non-queued request during a queued upload: the queued answers first, then upload_aborted.
    queued(26);
    recs = take(fb, &types);
    send_image(svc, recs[0], img);
    take(fb, &types);
    queued(27);
    recs = take(fb, &types);
    CHECK(types.size() == 1 && types[0] == "ready");
    send_req(svc, "{\"t\":\"selftest\",\"id\":28}");
    recs = take(fb, &types);
    const std::vector<std::string> want2 = {"detect", "error", "selftest"};
    CHECK(types == want2 && error_code(recs[1]) == "upload_aborted");
    // "queue" must be a boolean; false is a plain detect.
    send_req(svc, "{\"t\":\"detect\",\"id\":29,\"w\":20,\"h\":30,\"fmt\":\"rgb888\",\"size\":1800,\"crc\":1,\"queue\":1}");
    recs = take(fb, &types);
    CHECK(types.size() == 1 && error_code(recs[0]) == "bad_request");
    CHECK(fb.buffers.size() == 1);  // the last detect's image
}

static int cmd_unit()
{
    unit_service();
    unit_service_queue();
    unit_crc();
    unit_json();
    unit_line();
    unit_decoder_bounds();
    unit_upload();
    unit_pdl3();
    std::printf("%d checks, %d failures\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const std::string cmd = argc > 1 ? argv[1] : "unit";
    if (cmd == "unit") {
        return cmd_unit();
    }
    if (cmd == "encode" && argc == 3) {
        return cmd_encode(argv[2]);
    }
    if (cmd == "decode") {
        return cmd_decode(argc - 2, argv + 2);
    }
    if (cmd == "serve") {
        return cmd_serve(argc - 2, argv + 2);
    }
    std::fprintf(stderr, "usage: %s unit | encode DIR | decode FILE...\n", argv[0]);
    return 2;
}
