// The device's request handling, independent of ESP-IDF and esp-dl: validation, uploads, errors.
//
// The firmware implements `Backend` with esp-dl and the console; native tests implement it with
// fakes, so every rule here (each bad input gets an error record, uploads time out, nothing is
// ever left waiting) is tested off-target. host/protocol/device.py is the Python twin the
// simulated DUT uses.
#pragma once

#include <cstddef>
#include <cstdint>
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
    virtual void rerun(StageUs *us) = 0;
    virtual void forget_image() = 0;
    virtual bool selftest(int64_t *us) = 0;
    virtual std::vector<LayerUs> profile(int64_t *total_us) = 0;
    // Tensors of the last detect (inputs first); empty when selftest/profile overwrote them.
    virtual std::vector<TensorView> tensors() = 0;
};

class Service {
public:
    Service(Backend &backend, const Limits &limits);
    ~Service();

    // Bytes from the host, in any slicing.
    void feed(const uint8_t *data, size_t len);
    // Call at least every few hundred ms: expires stalled uploads.
    void poll();
    bool uploading() const { return rx_.active(); }

private:
    void on_event(const DecoderEvent &ev);
    void handle_request(std::string_view body);
    void start_detect(int64_t id, const JsonObject &req);
    void finish_upload();
    void abort_upload(const char *code, const char *message);
    void drop_image();
    void send_error(int64_t id, const char *code, const std::string &message);
    bool require_model(int64_t id);

    Backend &backend_;
    Limits limits_;
    RequestDecoder decoder_;
    UploadReceiver rx_;
    DetectParams pending_;
    uint8_t *image_ = nullptr;
    bool have_image_ = false;  // a detect completed on image_
    uint8_t next_upload_id_ = 0;
    int64_t last_activity_us_ = 0;
    int64_t ready_us_ = 0;
    std::vector<std::string> replies_;
};

}  // namespace hil
