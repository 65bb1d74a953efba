// The model side of the firmware: load and verify the PDL3 pack, then detect, self-test, dump,
// benchmark and profile with esp-dl's own Model, ImagePreprocessor and yolo11PostProcessor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "hil_protocol/records.hpp"

namespace dl {
class Model;
class TensorBase;
namespace image {
class ImagePreprocessor;
}
namespace detect {
class yolo11PostProcessor;
}
}  // namespace dl

namespace hil_fw {

// Model states reported in "boot"/"info" (docs/protocol.md).
constexpr const char *kModelOk = "ok";
constexpr const char *kModelMissing = "missing";          // no partition, or no PDL3 pack in it
constexpr const char *kModelSha256 = "sha256_mismatch";   // pack digest does not match its bytes
constexpr const char *kModelLoadFailed = "load_failed";   // esp-dl could not load/build it
constexpr const char *kModelUnsupported = "unsupported";  // not a 3-channel int8 YOLO11 detect graph

struct StageTimes {
    int64_t pre_us = 0, model_us = 0, post_us = 0;
};

class ModelRunner {
public:
    // Verify and load the pack in partition `label`. Never aborts; the outcome is state().
    void load(const char *label);

    const std::string &state() const { return state_; }
    const std::string &detail() const { return detail_; }
    bool ready() const { return state_ == kModelOk; }
    const std::string &model_name() const { return model_name_; }
    const std::string &model_sha256() const { return model_sha256_; }
    const std::string &pack_sha256() const { return pack_sha256_; }
    const std::string &selftest_state() const { return selftest_; }
    std::vector<hil::TensorInfo> inputs();
    std::vector<hil::TensorInfo> outputs();

    // False (with the reason) when letterboxing a w x h image would leave an empty content area:
    // esp-dl's preprocess aborts on such input instead of returning an error.
    bool accepts(int width, int height, std::string *why);
    // Letterbox-preprocess the RGB888 image, run the model, postprocess with these thresholds.
    // `image` must stay valid until the next detect (bench reuses it).
    void detect(const uint8_t *image, int width, int height, float score_thr, float nms_thr, int top_k,
                std::vector<hil::BoxOut> *boxes, StageTimes *times);
    // The three stages again on the image of the last detect (bench).
    void rerun(StageTimes *times);
    bool has_image() const { return image_ != nullptr; }
    void forget_image();
    // Whether the dump tensors still are the last detect's (test() and get_module_info() overwrite the
    // outputs and leave the input buffer to whatever the planner put there).
    bool tensors_current() const { return tensors_current_; }

    // Model::test() on the test values embedded in the .espdl. Returns pass/fail.
    bool selftest(int64_t *us);
    // Per-layer latency from Model::get_module_info() (runs one single-core inference), in execution order.
    struct Layer {
        std::string name, type;
        uint32_t us;
    };
    std::vector<Layer> profile(int64_t *total_us);

    // Tensors of the last run, inputs first, for "dump". The input is the snapshot taken between preprocess
    // and Model::run(): esp-dl's greedy memory planner frees the graph input after its last consumer and
    // reuses that block (dl_memory_manager_greedy.cpp), so after run() the input tensor holds other data.
    struct Tensor {
        hil::TensorInfo info;
        const uint8_t *data;
        size_t bytes;
    };
    std::vector<Tensor> tensors();

private:
    bool hash_pack(const char *label);
    void run_stages(StageTimes *times);
    void snapshot_input();

    std::string state_ = kModelMissing;
    std::string detail_;
    std::string model_name_, model_sha256_, pack_sha256_;
    std::string selftest_ = "not_run";
    dl::Model *model_ = nullptr;
    dl::image::ImagePreprocessor *pre_ = nullptr;
    dl::detect::yolo11PostProcessor *post_ = nullptr;
    int post_top_k_ = 0;
    const uint8_t *image_ = nullptr;
    int width_ = 0, height_ = 0;
    float score_thr_ = 0.25f, nms_thr_ = 0.7f;
    std::vector<hil::BoxOut> last_boxes_;
    bool tensors_current_ = false;
    uint8_t *input_snapshot_ = nullptr;  // the model input as preprocess left it, for "dump"
    size_t input_snapshot_bytes_ = 0;
};

}  // namespace hil_fw
