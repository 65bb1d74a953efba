// Model loading, verification and the detect/selftest/bench/profile/dump operations (see model_runner.hpp).
//
// Calls checked against esp-dl v3.3.9 (dl_model_base.hpp, fbs_loader.hpp, dl_image_preprocessor.hpp,
// dl_detect_yolo11_postprocessor.hpp, dl_detect_define.hpp, models/coco_detect/coco_detect.cpp).
#include "model_runner.hpp"

#include <cstring>
#include <list>
#include <map>

#include "dl_detect_yolo11_postprocessor.hpp"
#include "dl_image_preprocessor.hpp"
#include "dl_model_base.hpp"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "esp_partition.h"
#include "esp_timer.h"
#include "fbs_loader.hpp"
#include "hil_protocol/pdl3.hpp"
#include "hil_protocol/sha256.hpp"

namespace hil_fw {

static const char *TAG = "hil.model";
static const char *kOutputs[] = {"box0", "score0", "box1", "score1", "box2", "score2"};

static hil::TensorInfo describe(const std::string &name, dl::TensorBase *t)
{
    return hil::TensorInfo{name, t->get_dtype_string(), t->get_shape(), t->get_exponent()};
}

bool ModelRunner::hash_pack(const char *label)
{
    const esp_partition_t *part = esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, label);
    if (part == nullptr) {
        // Checked before any FbsLoader: its destructor dereferences a null mmap handle for a missing label.
        state_ = kModelMissing;
        detail_ = std::string("no data partition labelled '") + label + "' in the partition table";
        return false;
    }
    const void *ptr = nullptr;
    esp_partition_mmap_handle_t handle;
    if (esp_partition_mmap(part, 0, part->size, ESP_PARTITION_MMAP_DATA, &ptr, &handle) != ESP_OK) {
        state_ = kModelLoadFailed;
        detail_ = "cannot mmap the model partition";
        return false;
    }
    hil::Pdl3Header header;
    std::string err;
    const bool ok = hil::parse_pdl3(static_cast<const uint8_t *>(ptr), part->size, &header, &err);
    if (ok) {
        const hil::Pdl3Entry &e = header.entries[0];  // the harness packs exactly one model
        model_name_ = e.name;
        model_sha256_ = hil::Sha256::hex_digest(static_cast<const uint8_t *>(ptr) + e.data_offset, e.file_size);
        pack_sha256_ = hil::hex(header.sha256, 32);
    }
    // Unmap before esp-dl maps the same region: unmapping the first of two mappings drops both.
    esp_partition_munmap(handle);
    if (!ok) {
        state_ = kModelMissing;
        detail_ = "model partition holds no valid PDL3 pack: " + err;
        return false;
    }
    return true;
}

void ModelRunner::load(const char *label)
{
    if (!hash_pack(label)) {
        ESP_LOGE(TAG, "%s", detail_.c_str());
        return;
    }
    {
        // esp-dl's own digest check; the verifier is destroyed before the Model maps the partition.
        fbs::FbsLoader verifier(label, fbs::MODEL_LOCATION_IN_FLASH_PARTITION);
        if (verifier.get_model_format() != fbs::FBS_FILE_FORMAT_PDL3) {
            state_ = kModelMissing;
            detail_ = "esp-dl does not read the partition as PDL3 (esp-dl older than 3.3.7?)";
            return;
        }
        if (!verifier.verify_package_sha256()) {
            state_ = kModelSha256;
            detail_ = "PDL3 package sha256 does not match its bytes: reflash the model partition";
            return;
        }
    }
    // As coco_detect: copy parameters to PSRAM only when there is room for them next to activations.
    const bool param_copy = heap_caps_get_total_size(MALLOC_CAP_SPIRAM) >= 9 * 1024 * 1024;
    model_ = new dl::Model(label, model_name_.c_str(), fbs::MODEL_LOCATION_IN_FLASH_PARTITION, 0,
                           dl::MEMORY_MANAGER_GREEDY, nullptr, param_copy);
    if (model_->get_inputs().empty()) {  // the constructor reports failure only through the log
        state_ = kModelLoadFailed;
        detail_ = "dl::Model could not load or build the model (see the log above)";
        delete model_;
        model_ = nullptr;
        return;
    }
    dl::TensorBase *in = model_->get_input();
    const bool input_ok = in != nullptr && model_->get_inputs().size() == 1 &&
                          (in->get_dtype() == dl::DATA_TYPE_INT8 || in->get_dtype() == dl::DATA_TYPE_INT16) &&
                          in->get_shape().size() == 4 && in->get_shape()[3] == 3;
    auto &outs = model_->get_outputs();
    bool outputs_ok = true;
    for (const char *name : kOutputs) {
        outputs_ok = outputs_ok && outs.find(name) != outs.end();
    }
    if (!input_ok || !outputs_ok) {
        // ImagePreprocessor asserts on these, so refuse here instead of aborting.
        state_ = kModelUnsupported;
        detail_ = "model needs one int8/int16 NHWC 3-channel input and outputs box0..2, score0..2";
        return;
    }
    // The dump's copy of the model input (see snapshot_input), PSRAM first like the image buffer.
    input_snapshot_bytes_ = static_cast<size_t>(in->get_bytes());
    input_snapshot_ = static_cast<uint8_t *>(
        heap_caps_aligned_alloc(16, input_snapshot_bytes_, MALLOC_CAP_SPIRAM | MALLOC_CAP_8BIT));
    if (input_snapshot_ == nullptr) {
        input_snapshot_ = static_cast<uint8_t *>(heap_caps_aligned_alloc(16, input_snapshot_bytes_, MALLOC_CAP_8BIT));
    }
    if (input_snapshot_ == nullptr) {
        state_ = kModelLoadFailed;
        detail_ = "cannot allocate " + std::to_string(input_snapshot_bytes_) +
                  " bytes for the copy of the model input that dump returns";
        return;
    }
    // Never minimize(): test(), get_module_info() and tensor dumps need the maps it would free.
    pre_ = new dl::image::ImagePreprocessor(model_, {0, 0, 0}, {255, 255, 255});
    pre_->enable_letterbox({114, 114, 114});
    state_ = kModelOk;
    detail_.clear();
    ESP_LOGI(TAG, "model %s loaded (sha256 %s)", model_name_.c_str(), model_sha256_.c_str());
}

std::vector<hil::TensorInfo> ModelRunner::inputs()
{
    std::vector<hil::TensorInfo> out;
    if (model_ != nullptr) {
        for (auto &kv : model_->get_inputs()) {
            out.push_back(describe(kv.first, kv.second));
        }
    }
    return out;
}

std::vector<hil::TensorInfo> ModelRunner::outputs()
{
    std::vector<hil::TensorInfo> out;
    if (model_ != nullptr) {
        for (auto &kv : model_->get_outputs()) {
            out.push_back(describe(kv.first, kv.second));
        }
    }
    return out;
}

bool ModelRunner::accepts(int width, int height, std::string *why)
{
    const std::vector<int> shape = model_->get_input()->get_shape();  // NHWC
    const float sx = static_cast<float>(shape[2]) / static_cast<float>(width);
    const float sy = static_cast<float>(shape[1]) / static_cast<float>(height);
    const float s = sx < sy ? sx : sy;  // the letterbox scale, as ImagePreprocessor computes it
    if (static_cast<int>(s * static_cast<float>(width)) < 1 || static_cast<int>(s * static_cast<float>(height)) < 1) {
        *why = "the letterboxed image would be empty (aspect ratio too extreme for the model input)";
        return false;
    }
    return true;
}

void ModelRunner::run_stages(StageTimes *times)
{
    dl::image::img_t img;
    img.data = const_cast<uint8_t *>(image_);
    img.width = static_cast<uint16_t>(width_);
    img.height = static_cast<uint16_t>(height_);
    img.pix_type = dl::image::DL_IMAGE_PIX_TYPE_RGB888;

    // The canonical sequence of dl::detect::DetectImpl::run, timed per stage on the device clock. The input
    // snapshot for "dump" is taken between preprocess and run, outside both timed regions.
    const int64_t t0 = esp_timer_get_time();
    pre_->preprocess(img);
    const int64_t t1 = esp_timer_get_time();
    snapshot_input();
    const int64_t t1_run = esp_timer_get_time();
    model_->run();  // RUNTIME_MODE_SINGLE_CORE, as the example
    const int64_t t2 = esp_timer_get_time();
    post_->clear_result();
    post_->postprocess();
    std::list<dl::detect::result_t> &results = post_->get_result(img.width, img.height);
    const int64_t t3 = esp_timer_get_time();

    times->pre_us = t1 - t0;
    times->model_us = t2 - t1_run;
    times->post_us = t3 - t2;
    last_boxes_.clear();
    for (const auto &r : results) {
        last_boxes_.push_back({r.category, r.score, r.box[0], r.box[1], r.box[2], r.box[3]});
    }
    tensors_current_ = true;
}

void ModelRunner::snapshot_input()
{
    // esp-dl's greedy planner frees the graph input after its last consumer and reuses the block for later
    // tensors (dl_memory_manager_greedy.cpp: update_time(i + 1) for every input that is not a graph
    // output), so the input tensor no longer holds the preprocessed image once run() has returned.
    std::memcpy(input_snapshot_, model_->get_input()->get_element_ptr(), input_snapshot_bytes_);
}

void ModelRunner::detect(const uint8_t *image, int width, int height, float score_thr, float nms_thr, int top_k,
                         std::vector<hil::BoxOut> *boxes, StageTimes *times)
{
    image_ = image;
    width_ = width;
    height_ = height;
    if (post_ == nullptr || post_top_k_ != top_k) {  // top_k is fixed at construction
        delete post_;
        post_ = new dl::detect::yolo11PostProcessor(model_, pre_, score_thr, nms_thr, top_k,
                                                    {{8, 8, 4, 4}, {16, 16, 8, 8}, {32, 32, 16, 16}});
        post_top_k_ = top_k;
    }
    post_->set_score_thr(score_thr);
    post_->set_nms_thr(nms_thr);
    score_thr_ = score_thr;
    nms_thr_ = nms_thr;
    run_stages(times);
    *boxes = last_boxes_;
}

void ModelRunner::rerun(StageTimes *times)
{
    run_stages(times);
}

void ModelRunner::forget_image()
{
    image_ = nullptr;
    tensors_current_ = false;
}

bool ModelRunner::selftest(int64_t *us)
{
    const int64_t t0 = esp_timer_get_time();
    const esp_err_t err = model_->test();  // compares every embedded test output bit-exactly (int8)
    *us = esp_timer_get_time() - t0;
    tensors_current_ = false;  // test() overwrote the input and output tensors
    selftest_ = err == ESP_OK ? "pass" : "fail";
    return err == ESP_OK;
}

std::vector<ModelRunner::Layer> ModelRunner::profile(int64_t *total_us)
{
    const std::vector<std::string> order = model_->get_fbs_model()->topological_sort();
    std::map<std::string, dl::module_info> info = model_->get_module_info();
    std::vector<Layer> layers;
    for (const auto &name : order) {
        auto it = info.find(name);
        if (it != info.end()) {
            layers.push_back({name, it->second.type, it->second.latency});
        }
    }
    auto total = info.find("total");
    *total_us = total != info.end() ? total->second.latency : 0;
    tensors_current_ = false;  // get_module_info() ran the model again: the outputs are no longer the detect's
    return layers;
}

std::vector<ModelRunner::Tensor> ModelRunner::tensors()
{
    std::vector<Tensor> out;
    // The one model input (load() refuses models with more), as it was when run() started.
    auto &inputs = model_->get_inputs();
    out.push_back({describe(inputs.begin()->first, inputs.begin()->second), input_snapshot_, input_snapshot_bytes_});
    for (const char *name : kOutputs) {
        dl::TensorBase *t = model_->get_outputs().at(name);
        out.push_back({describe(name, t), static_cast<const uint8_t *>(t->get_element_ptr()),
                       static_cast<size_t>(t->get_bytes())});
    }
    return out;
}

}  // namespace hil_fw
