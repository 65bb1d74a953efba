// A Backend with fixed, deterministic answers and a manual clock, for the native Service tests and fuzzing.
#pragma once

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "hil_protocol/service.hpp"

struct FakeBackend : hil::Backend {
    int64_t clock_us = 0;
    std::vector<std::string> sent;
    const char *model_code = nullptr;  // set to e.g. "model_missing" to simulate a bad model
    bool current = false;
    size_t allocated = 0;          // bytes of the live image buffers
    size_t alloc_limit = 1 << 24;  // largest single buffer
    size_t max_buffers = 2;        // the protocol's bound: more live buffers is a leak or a bug
    std::map<uint8_t *, size_t> buffers;
    // Queued detects finish compute_us after they started (0: at the next poll), on the manual clock.
    int64_t compute_us = 0;
    bool job_active = false;
    int64_t job_start_us = 0;
    std::vector<hil::BoxOut> job_boxes;
    hil::StageUs job_us;
    std::vector<uint8_t> input = std::vector<uint8_t>(48, 7), output = std::vector<uint8_t>(5000, 3);
    const uint8_t *image = nullptr;

    int64_t now_us() override { return clock_us; }
    void send(const std::string &line) override { sent.push_back(line); }
    void info(hil::InfoFields *f) override
    {
        f->chip = "fake";
        f->model_state = model_code ? "missing" : "ok";
        f->console = "test";
        f->selftest = "not_run";
    }
    const char *model_error(std::string *message) override
    {
        *message = "fake model problem";
        return model_code;
    }
    bool accepts_image(int width, int height, std::string *why) override
    {
        *why = "fake: at most 100:1 aspect";
        return width <= 100 * height && height <= 100 * width;
    }
    uint8_t *alloc_image(size_t bytes) override
    {
        if (bytes > alloc_limit || buffers.size() >= max_buffers) {
            return nullptr;  // also catches a leaked image
        }
        auto *p = static_cast<uint8_t *>(std::malloc(bytes));
        buffers[p] = bytes;
        allocated += bytes;
        return p;
    }
    void free_image(uint8_t *p) override
    {
        auto it = buffers.find(p);
        if (it == buffers.end()) {
            std::abort();  // a double free, or not ours
        }
        allocated -= it->second;
        buffers.erase(it);
        std::free(p);
    }
    void detect(const uint8_t *img, const hil::DetectParams &p, std::vector<hil::BoxOut> *boxes,
                hil::StageUs *us) override
    {
        image = img;
        boxes->push_back({1, 0.5f, 0, 0, p.width - 1, p.height - 1});
        *us = {10, 20, 30};
        current = true;
    }
    void start_detect(const uint8_t *img, const hil::DetectParams &p) override
    {
        if (job_active) {
            std::abort();  // the service must never start a second job
        }
        job_boxes.clear();
        detect(img, p, &job_boxes, &job_us);
        job_active = true;
        job_start_us = clock_us;
    }
    bool detect_done(bool wait, std::vector<hil::BoxOut> *boxes, hil::StageUs *us) override
    {
        if (!job_active || (!wait && clock_us - job_start_us < compute_us)) {
            return false;
        }
        if (clock_us < job_start_us + compute_us) {
            clock_us = job_start_us + compute_us;  // waiting takes the rest of the compute time
        }
        job_active = false;
        *boxes = job_boxes;
        *us = job_us;
        return true;
    }
    void rerun(hil::StageUs *us) override
    {
        if (image == nullptr) {
            std::abort();  // the service must never rerun without an image
        }
        *us = {11, 21, 31};
    }
    void forget_image() override
    {
        image = nullptr;
        current = false;
    }
    bool selftest(int64_t *us) override
    {
        *us = 99;
        current = false;
        return true;
    }
    std::vector<hil::LayerUs> profile(int64_t *total) override
    {
        *total = 7;
        current = false;
        return {{"/conv0", "Conv", 3}, {"/act0", "Swish", 4}};
    }
    std::vector<hil::TensorView> tensors() override
    {
        if (!current) {
            return {};
        }
        return {{{"images", "int8", {1, 4, 4, 3}, -7}, input.data(), input.size()},
                {{"score0", "int8", {1, 10, 10, 50}, -2}, output.data(), output.size()}};
    }
};
