// hil::Backend on the chip (see esp_backend.hpp).
#include "esp_backend.hpp"

#include "device_info.hpp"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "sdkconfig.h"

namespace hil_fw {

int64_t EspBackend::now_us()
{
    return esp_timer_get_time();
}

void EspBackend::send(const std::string &line)
{
    transport_.write_line(line.data(), line.size());
}

void EspBackend::info(hil::InfoFields *f)
{
    fill_device_info(f);
    f->model_state = model_.state();
    f->model_name = model_.model_name();
    f->model_sha256 = model_.model_sha256();
    f->pack_sha256 = model_.pack_sha256();
    f->inputs = model_.inputs();
    f->outputs = model_.outputs();
    f->console = transport_.name();
    f->selftest = model_.selftest_state();
}

const char *EspBackend::model_error(std::string *message)
{
    if (model_.ready()) {
        return nullptr;
    }
    *message = model_.detail();
    if (model_.state() == kModelSha256) {
        return "model_sha256";
    }
    if (model_.state() == kModelMissing) {
        return "model_missing";
    }
    return "model_load";  // load_failed or unsupported
}

bool EspBackend::accepts_image(int width, int height, std::string *why)
{
    return model_.accepts(width, height, why);
}

uint8_t *EspBackend::alloc_image(size_t bytes)
{
    // PSRAM first (a 640x640 image is 1.2 MB); 16-byte aligned for esp-dl's SIMD loads.
    void *p = heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT);
    if (p == nullptr) {
        p = heap_caps_aligned_alloc(16, bytes, MALLOC_CAP_8BIT);
    }
    return static_cast<uint8_t *>(p);
}

void EspBackend::free_image(uint8_t *image)
{
    heap_caps_free(image);
}

void EspBackend::detect(const uint8_t *image, const hil::DetectParams &p, std::vector<hil::BoxOut> *boxes,
                        hil::StageUs *us)
{
    StageTimes t;
    model_.detect(image, p.width, p.height, p.score_thr, p.nms_thr, p.top_k, boxes, &t);
    *us = {t.pre_us, t.model_us, t.post_us};
}

void EspBackend::worker_entry(void *self)
{
    static_cast<EspBackend *>(self)->worker_loop();
}

void EspBackend::worker_loop()
{
    while (true) {
        ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
        if (job_state_.load(std::memory_order_acquire) != kQueued) {
            continue;
        }
        job_boxes_.clear();
        detect(job_image_, job_params_, &job_boxes_, &job_us_);
        job_state_.store(kDone, std::memory_order_release);  // the protocol task polls for it
    }
}

void EspBackend::start_detect(const uint8_t *image, const hil::DetectParams &params)
{
    if (worker_ == nullptr) {
        // The other core where there is one; below the protocol task's priority on a single core, so that
        // uploads still go on (between esp-dl's layers) while the model runs.
        const BaseType_t core = CONFIG_FREERTOS_NUMBER_OF_CORES > 1 ? 1 : 0;
        const UBaseType_t priority = uxTaskPriorityGet(nullptr) > 1 ? uxTaskPriorityGet(nullptr) - 1 : 1;
        if (xTaskCreatePinnedToCore(worker_entry, "hil_detect", CONFIG_HIL_TASK_STACK, this, priority, &worker_,
                                    core) != pdPASS) {
            worker_ = nullptr;
            ESP_LOGW("hil", "no worker task for queued detects: they run one at a time");
        }
    }
    job_image_ = image;
    job_params_ = params;
    if (worker_ == nullptr) {  // synchronous: computed now, reported by the next detect_done()
        job_boxes_.clear();
        detect(image, params, &job_boxes_, &job_us_);
        job_state_.store(kSynchronous, std::memory_order_release);
        return;
    }
    job_state_.store(kQueued, std::memory_order_release);
    xTaskNotifyGive(worker_);
}

bool EspBackend::detect_done(bool wait, std::vector<hil::BoxOut> *boxes, hil::StageUs *us)
{
    int state = job_state_.load(std::memory_order_acquire);
    if (state == kIdle) {
        return false;
    }
    while (state == kQueued) {
        if (!wait) {
            return false;
        }
        vTaskDelay(1);  // the worker is computing (a drain: some other request waits for it)
        state = job_state_.load(std::memory_order_acquire);
    }
    *boxes = job_boxes_;
    *us = job_us_;
    job_state_.store(kIdle, std::memory_order_release);
    return true;
}

void EspBackend::rerun(hil::StageUs *us)
{
    StageTimes t;
    model_.rerun(&t);
    *us = {t.pre_us, t.model_us, t.post_us};
}

void EspBackend::forget_image()
{
    model_.forget_image();
}

bool EspBackend::selftest(int64_t *us)
{
    return model_.selftest(us);
}

std::vector<hil::LayerUs> EspBackend::profile(int64_t *total_us)
{
    std::vector<hil::LayerUs> out;
    for (const auto &l : model_.profile(total_us)) {
        out.push_back({l.name, l.type, static_cast<int64_t>(l.us)});
    }
    return out;
}

std::vector<hil::TensorView> EspBackend::tensors()
{
    std::vector<hil::TensorView> out;
    if (!model_.tensors_current()) {
        return out;
    }
    for (const auto &t : model_.tensors()) {
        out.push_back({t.info, t.data, t.bytes});
    }
    return out;
}

}  // namespace hil_fw
