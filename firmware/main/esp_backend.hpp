// hil::Backend on the chip: esp-dl through ModelRunner, the console through Transport, PSRAM images.
#pragma once

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
    void rerun(hil::StageUs *us) override;
    void forget_image() override;
    bool selftest(int64_t *us) override;
    std::vector<hil::LayerUs> profile(int64_t *total_us) override;
    std::vector<hil::TensorView> tensors() override;

private:
    Transport &transport_;
    ModelRunner &model_;
};

}  // namespace hil_fw
