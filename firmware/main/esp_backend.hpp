// hil::Backend on the chip: esp-dl through ModelRunner, the console through Transport, PSRAM images.
//
// Queued detects (protocol 2) run on a worker task pinned to the other core, so the protocol task keeps
// receiving the next image while this one computes. Only one detect runs at a time; while it runs, the
// protocol task touches the model only read-only (accepts(), model_error()): every other request first
// waits for the queued detects (hil::Service).
#pragma once

#include <atomic>

#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "hil_protocol/service.hpp"
#include "model_runner.hpp"
#include "transport.hpp"

namespace hil_fw {

class EspBackend : public hil::Backend {
public:
    EspBackend(Transport &transport, ModelRunner &model) : transport_(transport), model_(model) {}

    int64_t now_us() override;
    void send(const std::string &line) override;
    void info(hil::InfoFields *fields) override;
    const char *model_error(std::string *message) override;
    bool accepts_image(int width, int height, std::string *why) override;
    uint8_t *alloc_image(size_t bytes) override;
    void free_image(uint8_t *image) override;
    void detect(const uint8_t *image, const hil::DetectParams &params, std::vector<hil::BoxOut> *boxes,
                hil::StageUs *us) override;
    void start_detect(const uint8_t *image, const hil::DetectParams &params) override;
    bool detect_done(bool wait, std::vector<hil::BoxOut> *boxes, hil::StageUs *us) override;
    void rerun(hil::StageUs *us) override;
    void forget_image() override;
    bool selftest(int64_t *us) override;
    std::vector<hil::LayerUs> profile(int64_t *total_us) override;
    std::vector<hil::TensorView> tensors() override;

private:
    static void worker_entry(void *self);
    void worker_loop();

    Transport &transport_;
    ModelRunner &model_;
    // The queued-detect worker (created at the first queued detect) and its one job.
    enum JobState { kIdle, kQueued, kDone, kSynchronous };
    TaskHandle_t worker_ = nullptr;
    std::atomic<int> job_state_{kIdle};
    const uint8_t *job_image_ = nullptr;
    hil::DetectParams job_params_;
    std::vector<hil::BoxOut> job_boxes_;
    hil::StageUs job_us_;
};

}  // namespace hil_fw
