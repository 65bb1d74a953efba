/* C entry points (for ctypes) around esp-dl's own ImagePreprocessor and yolo11PostProcessor, built for the host.
 *
 * Everything numeric is esp-dl's code: this file only wraps the caller's buffers in dl::TensorBase objects
 * (deep = false, no copy), registers them in the stand-in dl::Model (stubs/dl_model_base.hpp) and reads the
 * results back. Two places need esp-dl's private state, so this translation unit (only) opens access:
 *   - the letterbox borders and inverse scales live in ImagePreprocessor's private ImageTransformer; the
 *     postprocess reads them from there on the device, so they are written there from the given Geometry;
 *   - the candidate list before NMS (yolo11PostProcessor::parse_stage is private, m_box_list protected).
 * Errors (an ESP_ERROR_CHECK failure, a bad argument) come back as -1 with hil_last_error().
 */
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#define private public
#define protected public
#include "dl_detect_yolo11_postprocessor.hpp"
#include "dl_image_preprocessor.hpp"
#include "dl_math.hpp"
#include "dl_tensor_base.hpp"
#include "dl_tool.hpp"
#undef private
#undef protected

#include "hil_chip.h"

#define HIL_API extern "C" __attribute__((visibility("default")))

namespace dl {
namespace tool {
int round_half_even(float value); /* defined in dl_tool.cpp, not declared in dl_tool.hpp */
} // namespace tool
} // namespace dl

namespace {
thread_local std::string g_error;
thread_local std::string g_log;

int fail(const std::string &what)
{
    g_error = what;
    if (!g_log.empty()) g_error += " (esp-dl log: " + g_log + ")";
    return -1;
}

dl::dtype_t dtype_of(int bits)
{
    if (bits == 8) return dl::DATA_TYPE_INT8;
    if (bits == 16) return dl::DATA_TYPE_INT16;
    throw std::invalid_argument("bits must be 8 or 16, got " + std::to_string(bits));
}

struct Detection {
    int category;
    float score;
    int box[4];
};

struct PostResult {
    int thresholds[3];
    std::vector<Detection> candidates; /* the list after parse_stage x3: score-ordered, unclamped */
    std::vector<int> kept;             /* indices into candidates that survive NMS, in list order */
    std::vector<Detection> boxes;      /* postprocess() + get_result(): NMS survivors, clamped */
};

Detection detection_of(const dl::detect::result_t &r)
{
    Detection d{r.category, r.score, {r.box[0], r.box[1], r.box[2], r.box[3]}};
    return d;
}

bool same(const Detection &a, const Detection &b)
{
    return a.category == b.category && std::memcmp(&a.score, &b.score, sizeof(float)) == 0 &&
        std::equal(a.box, a.box + 4, b.box);
}
} // namespace

/* ESP_LOGE/ESP_LOGW of the esp-dl sources land here (stubs/esp_log.h); the last messages go with an error. */
extern "C" void hil_log(char level, const char *tag, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!g_log.empty()) g_log += "; ";
    g_log += std::string(1, level) + " " + tag + ": " + buf;
    if (g_log.size() > 2000) g_log.erase(0, g_log.size() - 2000);
}

HIL_API const char *hil_last_error(void)
{
    return g_error.c_str();
}

/* 1 when this build rounds half to even (CONFIG_ROUND_HALF_EVEN_ENABLED as patched), else 0. */
HIL_API int hil_round_half_even_enabled(void)
{
    return CONFIG_ROUND_HALF_EVEN_ENABLED;
}

/* Element-wise probes of esp-dl's arithmetic in this build, for the differential tests: what = 0 dl::tool::round<float>
 * (the per-chip rule), 1 dl::tool::round_half_even(float) (the fcvt.w.s rne model in the P4 build, esp-dl's C code
 * - the path without CONFIG_PIE_V2_BOOST - in the S3 build), 2 dl::quantize<int8_t>(x, arg), 3 quantize<int16_t>. */
HIL_API void hil_round_array(int what, const float *x, int n, float arg, int *out)
{
    for (int i = 0; i < n; i++) {
        switch (what) {
        case 0: out[i] = dl::tool::round(x[i]); break;
        case 1: out[i] = dl::tool::round_half_even(x[i]); break;
        case 2: out[i] = dl::quantize<int8_t>(x[i], arg); break;
        default: out[i] = dl::quantize<int16_t>(x[i], arg); break;
        }
    }
}

/* what = 0 dl::math::sigmoid, 1 dl::math::inverse_sigmoid, 2 the build's expf, 3 the build's logf. */
HIL_API void hil_float_array(int what, const float *x, int n, float *out)
{
    for (int i = 0; i < n; i++) {
        switch (what) {
        case 0: out[i] = dl::math::sigmoid(x[i]); break;
        case 1: out[i] = dl::math::inverse_sigmoid(x[i]); break;
        case 2: out[i] = hil_expf(x[i]); break;
        default: out[i] = hil_logf(x[i]); break;
        }
    }
}

/* The int-domain score threshold as yolo11PostProcessor::parse_stage computes it for an output exponent. */
HIL_API int hil_score_threshold(float score_thr, int exponent, int bits)
{
    float score_exp = DL_SCALE(exponent);
    float inv = 1.f / score_exp;
    float logit = dl::math::inverse_sigmoid(score_thr);
    return bits == 8 ? (int)dl::quantize<int8_t>(logit, inv) : (int)dl::quantize<int16_t>(logit, inv);
}

/* dl::math::dfl_integral over n groups of 16 dequantized values (in place, as esp-dl does) -> out[n]. */
HIL_API void hil_dfl_integral(float *data, int n, float *out)
{
    for (int i = 0; i < n; i++) out[i] = dl::math::dfl_integral(data + 16 * i, 15);
}

/* ImagePreprocessor(model, mean, std) + enable_letterbox(pad) + preprocess(RGB888 image), as coco_detect sets
 * it up for yolo11. Writes the int8/int16 NHWC input into `out` (dst_h * dst_w * 3 values) and the geometry
 * the postprocess reads: border {top, bottom, left, right} and the inverse resize scales {x, y}. */
HIL_API int hil_preprocess(const uint8_t *rgb, int src_w, int src_h, int dst_w, int dst_h, int exponent, int bits,
                           const float *mean, const float *std, const uint8_t *pad, void *out, int *border,
                           float *inv_scale)
{
    g_log.clear();
    try {
        if (src_w < 1 || src_h < 1 || src_w > 65535 || src_h > 65535 || dst_w < 1 || dst_h < 1 || dst_w > 65535 ||
            dst_h > 65535)
            return fail("image or model input size out of esp-dl's uint16_t range");
        dl::TensorBase input({1, dst_h, dst_w, 3}, out, exponent, dtype_of(bits), false);
        dl::Model model;
        model.inputs["images"] = &input;
        dl::image::ImagePreprocessor pre(&model, {mean[0], mean[1], mean[2]}, {std[0], std[1], std[2]});
        pre.enable_letterbox(std::array<uint8_t, 3>{pad[0], pad[1], pad[2]});
        dl::image::img_t img = {.data = const_cast<uint8_t *>(rgb),
                                .width = (uint16_t)src_w,
                                .height = (uint16_t)src_h,
                                .pix_type = dl::image::DL_IMAGE_PIX_TYPE_RGB888};
        pre.preprocess(img);
        std::vector<int> &b = pre.m_image_transformer.get_dst_img_border();
        for (int i = 0; i < 4; i++) border[i] = b.empty() ? 0 : b[i];
        inv_scale[0] = pre.get_resize_scale_x(true);
        inv_scale[1] = pre.get_resize_scale_y(true);
        return 0;
    } catch (const std::exception &e) {
        return fail(e.what());
    }
}

/* yolo11PostProcessor on six head outputs (outs: box0, score0, box1, score1, box2, score2; dims: per stage
 * H, W, classes; stages: per stage stride_y, stride_x, offset_y, offset_x), with the letterbox geometry of the
 * image. Returns a result handle (read with hil_post_* and free with hil_post_free) or NULL on error. */
HIL_API void *hil_postprocess(int bits, const void *const *outs, const int *dims, const int *exps, const int *stages,
                              int src_w, int src_h, const int *border, const float *inv_scale, float score_thr,
                              float nms_thr, int top_k)
{
    g_log.clear();
    try {
        dl::dtype_t dtype = dtype_of(bits);
        std::vector<std::unique_ptr<dl::TensorBase>> tensors;
        dl::Model model;
        for (int s = 0; s < 3; s++) {
            int h = dims[3 * s], w = dims[3 * s + 1], c = dims[3 * s + 2];
            tensors.emplace_back(new dl::TensorBase({1, h, w, 64}, outs[2 * s], exps[2 * s], dtype, false));
            model.outputs["box" + std::to_string(s)] = tensors.back().get();
            tensors.emplace_back(new dl::TensorBase({1, h, w, c}, outs[2 * s + 1], exps[2 * s + 1], dtype, false));
            model.outputs["score" + std::to_string(s)] = tensors.back().get();
        }
        std::vector<dl::detect::anchor_point_stage_t> stage_list;
        for (int s = 0; s < 3; s++)
            stage_list.push_back({stages[4 * s], stages[4 * s + 1], stages[4 * s + 2], stages[4 * s + 3]});

        /* The preprocessor the postprocess reads its geometry from (its input tensor is a placeholder). */
        int8_t placeholder[16] = {0};
        dl::TensorBase input({1, 1, 1, 3}, placeholder, 0, dl::DATA_TYPE_INT8, false);
        model.inputs["images"] = &input;
        dl::image::ImagePreprocessor pre(&model, {0.f, 0.f, 0.f}, {255.f, 255.f, 255.f});
        pre.m_image_transformer.m_border = {border[0], border[1], border[2], border[3]};
        pre.m_image_transformer.m_inv_scale_x = inv_scale[0];
        pre.m_image_transformer.m_inv_scale_y = inv_scale[1];

        auto result = std::make_unique<PostResult>();
        for (int s = 0; s < 3; s++) result->thresholds[s] = hil_score_threshold(score_thr, exps[2 * s + 1], bits);

        /* The device's call: postprocess() (parse_stage x3, nms) then get_result(width, height). */
        dl::detect::yolo11PostProcessor post(&model, &pre, score_thr, nms_thr, top_k, stage_list);
        post.postprocess();
        for (const auto &r : post.get_result(src_w, src_h)) result->boxes.push_back(detection_of(r));

        /* The same steps once more, stopping after parse_stage to list the candidates; each is tagged with its
         * list index (in mask_coeff, which nms() and get_result() leave alone) to see which ones NMS keeps. */
        dl::detect::yolo11PostProcessor steps(&model, &pre, score_thr, nms_thr, top_k, stage_list);
        for (int s = 0; s < 3; s++) {
            dl::TensorBase *score = model.get_output("score" + std::to_string(s));
            dl::TensorBase *box = model.get_output("box" + std::to_string(s));
            if (model.get_output("box0")->dtype == dl::DATA_TYPE_INT8)
                steps.parse_stage<int8_t>(score, box, s);
            else
                steps.parse_stage<int16_t>(score, box, s);
        }
        int index = 0;
        for (auto &r : steps.m_box_list) {
            result->candidates.push_back(detection_of(r));
            r.mask_coeff = {(float)index++};
        }
        steps.nms();
        std::vector<Detection> again;
        for (const auto &r : steps.get_result(src_w, src_h)) {
            result->kept.push_back((int)r.mask_coeff.at(0));
            again.push_back(detection_of(r));
        }
        if (again.size() != result->boxes.size() ||
            !std::equal(again.begin(), again.end(), result->boxes.begin(), same)) {
            fail("internal: the step-by-step postprocess disagrees with yolo11PostProcessor::postprocess()");
            return nullptr;
        }
        return result.release();
    } catch (const std::exception &e) {
        fail(e.what());
        return nullptr;
    }
}

/* counts[0..2] = candidates, kept, boxes; thresholds[0..2] = the int-domain score threshold per stage. */
HIL_API void hil_post_counts(void *handle, int *counts, int *thresholds)
{
    auto *r = static_cast<PostResult *>(handle);
    counts[0] = (int)r->candidates.size();
    counts[1] = (int)r->kept.size();
    counts[2] = (int)r->boxes.size();
    for (int i = 0; i < 3; i++) thresholds[i] = r->thresholds[i];
}

/* Copy candidates (category, score, box x4) and boxes likewise, and the kept indices, into caller arrays sized by
 * hil_post_counts. */
HIL_API void hil_post_read(void *handle, int *cand_cat, float *cand_score, int *cand_box, int *kept, int *box_cat,
                           float *box_score, int *box_box)
{
    auto *r = static_cast<PostResult *>(handle);
    for (size_t i = 0; i < r->candidates.size(); i++) {
        cand_cat[i] = r->candidates[i].category;
        cand_score[i] = r->candidates[i].score;
        std::copy(r->candidates[i].box, r->candidates[i].box + 4, cand_box + 4 * i);
    }
    std::copy(r->kept.begin(), r->kept.end(), kept);
    for (size_t i = 0; i < r->boxes.size(); i++) {
        box_cat[i] = r->boxes[i].category;
        box_score[i] = r->boxes[i].score;
        std::copy(r->boxes[i].box, r->boxes[i].box + 4, box_box + 4 * i);
    }
}

HIL_API void hil_post_free(void *handle)
{
    delete static_cast<PostResult *>(handle);
}
