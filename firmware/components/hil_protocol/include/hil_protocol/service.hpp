// The device's request handling, independent of ESP-IDF and esp-dl: validation, uploads, errors.
//
// The firmware implements `Backend` with esp-dl and the console; native tests implement it with
// fakes, so every rule here (each bad input gets an error record, uploads time out, nothing is
// ever left waiting) is tested off-target. host/protocol/device.py is the Python twin the
// simulated DUT uses.
//
// Queued detects (protocol 2, docs/protocol.md 2.4.1): the service holds at most `Limits::queue` images
// (one the backend computes, one uploading or waiting). Backend::start_detect starts a computation and
// Backend::detect_done reports its end, so the service keeps taking upload chunks meanwhile (the firmware
// computes on a worker task). Every request that is not a queued detect first waits for the queued ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "hil_protocol/decoder.hpp"
#include "hil_protocol/json.hpp"
#include "hil_protocol/records.hpp"
#include "hil_protocol/upload.hpp"

namespace hil {

struct DetectParams {
    int64_t id = 0;
    int width = 0, height = 0;
    uint32_t size = 0, crc = 0;
    uint32_t chunk = 4096, window = 16;
    float score_thr = 0.25f, nms_thr = 0.7f;
    int top_k = 10;
};

struct StageUs {
    int64_t pre = 0, model = 0, post = 0;
};

struct LayerUs {
    std::string name, type;
    int64_t us = 0;
};

struct TensorView {
    TensorInfo info;
    const uint8_t *data = nullptr;
    size_t bytes = 0;
};

struct Limits {
    uint64_t max_image = 1228800;
    uint32_t chunk_max = 8192;
    uint32_t window_max = 16;
    size_t rx_buffer = 65536;      // bytes the transport can hold unread (bounds the window)
    uint32_t upload_timeout_ms = 3000;
    uint32_t queue = 2;            // images held for queued detects: one computing, one uploading or waiting
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual int64_t now_us() = 0;
    virtual void send(const std::string &line) = 0;
    // Device, app and model fields of "info" (the service adds the limits).
    virtual void info(InfoFields *fields) = 0;
    // nullptr when the model is usable, else the error code (model_missing, model_sha256, model_load).
    virtual const char *model_error(std::string *message) = 0;
    // Whether the model can take a w x h image (e.g. its letterboxed content is not empty); why not.
    virtual bool accepts_image(int width, int height, std::string *why)
    {
        (void)width, (void)height, (void)why;
        return true;
    }
    virtual uint8_t *alloc_image(size_t bytes) = 0;  // nullptr when out of memory
    virtual void free_image(uint8_t *image) = 0;
    // Detect on `image` (kept by the backend until forget_image() for rerun()).
    virtual void detect(const uint8_t *image, const DetectParams &params, std::vector<BoxOut> *boxes,
                        StageUs *us) = 0;
    // Queued detect (protocol 2): start detecting on `image` and return; detect_done() reports the end. The
    // image stays the backend's until forget_image(), as with detect(). The default computes right here,
    // synchronously (a backend without concurrency still serves queued detects, one after the other).
    virtual void start_detect(const uint8_t *image, const DetectParams &params)
    {
        sync_boxes_.clear();
        detect(image, params, &sync_boxes_, &sync_us_);
        sync_done_ = true;
    }
    // True, with the result, once the detect start_detect() began has finished (false while it runs, or when
    // none was started). With `wait`, blocks until it has finished.
    virtual bool detect_done(bool wait, std::vector<BoxOut> *boxes, StageUs *us)
    {
        (void)wait;
        if (!sync_done_) {
            return false;
        }
        sync_done_ = false;
        *boxes = sync_boxes_;
        *us = sync_us_;
        return true;
    }
    virtual void rerun(StageUs *us) = 0;
    virtual void forget_image() = 0;
    virtual bool selftest(int64_t *us) = 0;
    virtual std::vector<LayerUs> profile(int64_t *total_us) = 0;
    // Tensors of the last detect (inputs first); empty when selftest/profile overwrote them.
    virtual std::vector<TensorView> tensors() = 0;

private:
    std::vector<BoxOut> sync_boxes_;
    StageUs sync_us_;
    bool sync_done_ = false;
};

class Service {
public:
    Service(Backend &backend, const Limits &limits);
    ~Service();

    // Bytes from the host, in any slicing.
    void feed(const uint8_t *data, size_t len);
    // Call at least every few hundred ms, and often while computing() (a finished queued detect is answered
    // here): expires stalled uploads, answers finished queued detects and starts the next one.
    void poll();
    bool uploading() const { return rx_.active(); }
    // A queued detect is being computed or waits for the backend.
    bool computing() const { return running_active_ || !waiting_.empty(); }
    // Image buffers held: uploading, waiting, computing, and the last detect's (at most 2).
    size_t images_held() const
    {
        return (upload_ != nullptr ? 1 : 0) + waiting_.size() + (running_active_ ? 1 : 0) + (image_ != nullptr ? 1 : 0);
    }

private:
    struct Job {
        DetectParams params;
        uint8_t *image = nullptr;
        int64_t upload_us = 0;
    };

    void on_event(const DecoderEvent &ev);
    void handle_request(std::string_view body);
    void start_detect(int64_t id, const JsonObject &req);
    void finish_upload();
    void abort_upload(const char *code, const char *message);
    void end_upload();
    void drop_image();
    void start_next();
    void collect(bool wait);
    void send_error(int64_t id, const char *code, const std::string &message);
    bool require_model(int64_t id);

    Backend &backend_;
    Limits limits_;
    RequestDecoder decoder_;
    UploadReceiver rx_;
    DetectParams pending_;        // the request of the upload in progress
    uint8_t *upload_ = nullptr;   // its image buffer
    bool upload_queued_ = false;  // the upload is a queued detect's
    uint8_t *image_ = nullptr;    // the image of the last finished detect (bench reruns it)
    bool have_image_ = false;     // a detect completed on image_
    Job running_;                 // the queued detect the backend computes
    bool running_active_ = false;
    std::deque<Job> waiting_;     // queued detects uploaded whole, not started yet
    uint8_t next_upload_id_ = 0;
    int64_t last_activity_us_ = 0;
    int64_t ready_us_ = 0;
    std::vector<std::string> replies_;
};

}  // namespace hil
