// Request handling and upload supervision (see service.hpp; docs/protocol.md is the contract).
#include "hil_protocol/service.hpp"

#include <cmath>

#include "hil_protocol/crc32.hpp"
#include "hil_protocol/json.hpp"

namespace hil {

namespace {

// Optional integer field within [lo, hi]; false when present but wrong.
bool opt_int(const JsonObject &o, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const JsonScalar *v = o.get(name);
    if (v == nullptr) {
        return true;
    }
    if (v->type != JsonScalar::kInt || v->i < lo || v->i > hi) {
        return false;
    }
    *out = v->i;
    return true;
}

bool opt_float(const JsonObject &o, const char *name, double lo_excl, double hi_incl, float *out)
{
    const JsonScalar *v = o.get(name);
    if (v == nullptr) {
        return true;
    }
    double d;
    if (!o.get_number(name, &d) || !(d > lo_excl && d <= hi_incl)) {
        return false;
    }
    *out = static_cast<float>(d);
    return true;
}

}  // namespace

Service::Service(Backend &backend, const Limits &limits)
    : backend_(backend), limits_(limits), decoder_(limits.chunk_max)
{
}

Service::~Service()
{
    if (running_active_) {  // the backend may still compute on a buffer this service owns
        std::vector<BoxOut> boxes;
        StageUs us;
        backend_.detect_done(true, &boxes, &us);
        backend_.forget_image();
        backend_.free_image(running_.image);
    }
    for (const Job &job : waiting_) {
        backend_.free_image(job.image);
    }
    end_upload();
    drop_image();
}

void Service::feed(const uint8_t *data, size_t len)
{
    decoder_.feed(data, len, [this](const DecoderEvent &ev) { on_event(ev); });
}

void Service::poll()
{
    if (rx_.active() && backend_.now_us() - last_activity_us_ > int64_t(limits_.upload_timeout_ms) * 1000) {
        abort_upload("upload_timeout", "no valid chunk within the upload timeout; send detect again");
    }
    collect(false);
}

void Service::send_error(int64_t id, const char *code, const std::string &message)
{
    backend_.send(error_record(id, code, message));
}

void Service::on_event(const DecoderEvent &ev)
{
    switch (ev.kind) {
    case DecoderEvent::kRequest:
        handle_request(ev.body);
        break;
    case DecoderEvent::kChunk:
        if (!rx_.active()) {
            return;  // a late frame of a finished or aborted upload
        }
        last_activity_us_ = backend_.now_us();
        replies_.clear();
        rx_.on_chunk(ev.upload_id, ev.seq, ev.payload, ev.payload_len, replies_);
        for (const auto &r : replies_) {
            backend_.send(r);
        }
        if (rx_.complete()) {
            finish_upload();
        }
        break;
    case DecoderEvent::kBad:
        if (ev.line) {
            if (!rx_.active()) {  // during an upload a damaged chunk can look like a damaged line
                const bool crc = std::string(ev.reason) == line_status_text(LineStatus::kCrcMismatch);
                send_error(0, crc ? "bad_crc" : "bad_request", std::string("request line rejected: ") + ev.reason);
            }
        } else if (ev.has_header && rx_.active()) {
            replies_.clear();
            rx_.on_bad_frame(ev.upload_id, ev.seq, replies_);
            for (const auto &r : replies_) {
                backend_.send(r);
            }
        }
        break;
    }
}

void Service::drop_image()
{
    // The last detect's image: the model's tensors stop being that detect's.
    if (image_ != nullptr) {
        backend_.forget_image();
        backend_.free_image(image_);
        image_ = nullptr;
    }
    have_image_ = false;
}

void Service::end_upload()
{
    rx_.reset();
    decoder_.set_max_payload(limits_.chunk_max);
    if (upload_ != nullptr) {
        backend_.free_image(upload_);
        upload_ = nullptr;
    }
}

void Service::abort_upload(const char *code, const char *message)
{
    const int64_t id = pending_.id;
    end_upload();
    send_error(id, code, message);
}

void Service::start_next()
{
    if (running_active_ || waiting_.empty()) {
        return;
    }
    running_ = waiting_.front();
    waiting_.pop_front();
    drop_image();  // the model's tensors are about to be this job's
    running_active_ = true;
    backend_.start_detect(running_.image, running_.params);
}

void Service::collect(bool wait)
{
    while (running_active_) {
        std::vector<BoxOut> boxes;
        StageUs us;
        if (!backend_.detect_done(wait, &boxes, &us)) {
            return;
        }
        running_active_ = false;
        image_ = running_.image;  // the last detect: bench and dump use it
        have_image_ = true;
        const DetectParams &p = running_.params;
        backend_.send(detect_record(p.id, p.width, p.height, boxes, us.pre, us.model, us.post, running_.upload_us));
        start_next();
    }
}

bool Service::require_model(int64_t id)
{
    std::string message;
    const char *code = backend_.model_error(&message);
    if (code == nullptr) {
        return true;
    }
    send_error(id, code, message);
    return false;
}

void Service::handle_request(std::string_view body)
{
    JsonObject req;
    std::string err;
    if (!req.parse(body, &err)) {
        send_error(0, "bad_json", "request is not a JSON object: " + err);
        return;
    }
    std::string t;
    int64_t id = 0;
    if (!req.get_string("t", &t) || !req.get_int("id", &id) || id < 1 || id > 0x7FFFFFFF) {
        send_error(0, "bad_request", "a request needs a string \"t\" and an integer \"id\" in 1..2^31-1");
        return;
    }
    bool queue = false;
    const bool queued = t == "detect" && req.get_bool("queue", &queue) && queue;
    if (!queued) {
        collect(true);  // the queued detects are answered first, in order
    }
    if (rx_.active()) {
        abort_upload("upload_aborted", "a new request arrived before the upload finished");
    }
    if (t == "info") {
        InfoFields f;
        backend_.info(&f);
        f.max_image = limits_.max_image;
        f.chunk_max = limits_.chunk_max;
        f.win_max = limits_.window_max;
        f.queue = limits_.queue;
        backend_.send(info_record(id, f));
    } else if (t == "selftest") {
        if (require_model(id)) {
            int64_t us = 0;
            const bool ok = backend_.selftest(&us);
            backend_.send(selftest_record(id, ok, us));
        }
    } else if (t == "detect") {
        if (require_model(id)) {
            start_detect(id, req);
        }
    } else if (t == "dump") {
        if (require_model(id)) {
            const std::vector<TensorView> ts = have_image_ ? backend_.tensors() : std::vector<TensorView>{};
            if (ts.empty()) {
                send_error(id, "no_image", "no tensors of a detect to dump (run detect first; selftest and "
                                           "profile overwrite them)");
                return;
            }
            std::vector<std::string> names;
            for (const auto &tv : ts) {
                backend_.send(tensor_record(id, tv.info, tv.data, tv.bytes));
                for (size_t off = 0; off < tv.bytes; off += kDumpPartBytes) {
                    backend_.send(part_record(id, tv.info.name, off, tv.data, tv.bytes));
                }
                names.push_back(tv.info.name);
            }
            backend_.send(dump_record(id, names));
        }
    } else if (t == "bench") {
        int64_t warmup = 1, runs = 10;
        if (!opt_int(req, "warmup", 0, 1000, &warmup) || !opt_int(req, "runs", 1, 10000, &runs)) {
            send_error(id, "bad_request", "bench needs warmup in 0..1000 and runs in 1..10000");
            return;
        }
        if (!require_model(id)) {
            return;
        }
        if (!have_image_) {
            send_error(id, "no_image", "bench runs on the last detected image: run detect first");
            return;
        }
        StageUs us;
        for (int64_t i = 0; i < warmup; ++i) {
            backend_.rerun(&us);
        }
        for (int64_t i = 0; i < runs; ++i) {
            backend_.rerun(&us);
            backend_.send(run_record(id, static_cast<uint32_t>(i), us.pre, us.model, us.post));
        }
        backend_.send(bench_record(id, static_cast<uint32_t>(warmup), static_cast<uint32_t>(runs)));
    } else if (t == "profile") {
        if (require_model(id)) {
            int64_t total = 0;
            const std::vector<LayerUs> layers = backend_.profile(&total);
            for (size_t i = 0; i < layers.size(); ++i) {
                backend_.send(layer_record(id, static_cast<uint32_t>(i), layers[i].name, layers[i].type,
                                           layers[i].us));
            }
            backend_.send(profile_record(id, static_cast<uint32_t>(layers.size()), total));
        }
    } else {
        send_error(id, "unknown_request", "unknown request type \"" + t +
                                              "\" (known: info, selftest, detect, dump, bench, profile)");
    }
}

void Service::start_detect(int64_t id, const JsonObject &req)
{
    DetectParams p;
    p.id = id;
    int64_t w = 0, h = 0, size = 0, crc = 0, chunk = p.chunk, win = p.window, top_k = p.top_k;
    std::string fmt;
    const bool ok = req.get_int("w", &w) && w >= 1 && w <= 65535 && req.get_int("h", &h) && h >= 1 && h <= 65535 &&
                    req.get_string("fmt", &fmt) && fmt == "rgb888" && req.get_int("size", &size) &&
                    size == w * h * 3 && req.get_int("crc", &crc) && crc >= 0 && crc <= 0xFFFFFFFFLL &&
                    opt_int(req, "chunk", 1, 1 << 30, &chunk) && opt_int(req, "win", 1, 1 << 30, &win) &&
                    opt_int(req, "topk", 1, 1000, &top_k) && opt_float(req, "score", 0.0, 1.0, &p.score_thr) &&
                    opt_float(req, "nms", 0.0, 1.0, &p.nms_thr) && p.score_thr < 1.0f;
    bool queued = false;
    const bool queue_ok = req.get("queue") == nullptr || req.get_bool("queue", &queued);
    if (!ok || !queue_ok) {
        send_error(id, "bad_request", "detect needs w,h in 1..65535, fmt \"rgb888\", size = w*h*3, crc (u32); "
                                      "optional chunk, win, topk in 1..1000, score in (0,1), nms in (0,1], "
                                      "queue (bool)");
        return;
    }
    if (static_cast<uint64_t>(size) > limits_.max_image) {
        send_error(id, "too_large", "image of " + std::to_string(size) + " bytes exceeds the firmware maximum " +
                                        std::to_string(limits_.max_image) + " (CONFIG_HIL_MAX_IMAGE_BYTES)");
        return;
    }
    std::string why;
    if (!backend_.accepts_image(static_cast<int>(w), static_cast<int>(h), &why)) {
        send_error(id, "bad_request", "the model cannot take a " + std::to_string(w) + "x" + std::to_string(h) +
                                          " image: " + why);
        return;
    }
    const size_t jobs = (running_active_ ? 1 : 0) + waiting_.size();
    if (queued && jobs >= limits_.queue) {
        send_error(id, "busy", "the device holds " + std::to_string(jobs) + " queued images (its queue is " +
                                   std::to_string(limits_.queue) + "): wait for a detect answer before the next upload");
        return;
    }
    if (jobs == 0) {
        drop_image();  // the previous image is replaced even if this upload fails
    }
    upload_ = backend_.alloc_image(static_cast<size_t>(size));
    if (upload_ == nullptr) {
        send_error(id, "no_memory", "cannot allocate " + std::to_string(size) + " bytes for the image");
        return;
    }
    upload_queued_ = queued;
    p.width = static_cast<int>(w);
    p.height = static_cast<int>(h);
    p.size = static_cast<uint32_t>(size);
    p.crc = static_cast<uint32_t>(crc);
    p.top_k = static_cast<int>(top_k);
    p.chunk = static_cast<uint32_t>(chunk < limits_.chunk_max ? chunk : limits_.chunk_max);
    // Everything in flight must fit the receive buffer: a UART has no flow control.
    uint64_t fit = limits_.rx_buffer / (p.chunk + 14);
    uint64_t window = static_cast<uint64_t>(win);
    window = window < limits_.window_max ? window : limits_.window_max;
    window = window < fit ? window : fit;
    p.window = static_cast<uint32_t>(window < 1 ? 1 : window);
    pending_ = p;
    next_upload_id_ = static_cast<uint8_t>(next_upload_id_ == 255 ? 1 : next_upload_id_ + 1);
    rx_.begin(next_upload_id_, upload_, p.size, p.chunk);
    decoder_.set_max_payload(p.chunk);
    last_activity_us_ = ready_us_ = backend_.now_us();
    backend_.send(ready_record(id, next_upload_id_, p.chunk, p.window, rx_.chunks()));
}

void Service::finish_upload()
{
    const int64_t upload_us = backend_.now_us() - ready_us_;
    uint8_t *image = upload_;
    upload_ = nullptr;  // ours from here on: end_upload() must not free it
    end_upload();
    const DetectParams p = pending_;
    if (crc32(image, p.size) != p.crc) {
        backend_.free_image(image);
        send_error(p.id, "image_crc", "all chunks arrived but the image CRC differs: send detect again");
        return;
    }
    if (upload_queued_) {
        waiting_.push_back(Job{p, image, upload_us});
        start_next();
        return;
    }
    image_ = image;
    std::vector<BoxOut> boxes;
    StageUs us;
    backend_.detect(image_, p, &boxes, &us);
    have_image_ = true;
    backend_.send(detect_record(p.id, p.width, p.height, boxes, us.pre, us.model, us.post, upload_us));
}

}  // namespace hil
