// fbs::FbsModel for the host build: a stand-in for esp-dl's closed prebuilt library
// (fbs_loader/lib/<target>/libfbs_model.a), which the host cannot link.
//
// The real class parses the .espdl FlatBuffers payload. This one serves a fixed fake YOLO11 detection
// graph made of esp-dl's own modules, so dl::Model, its greedy memory planner, Model::test(),
// get_module_info(), ImagePreprocessor and yolo11PostProcessor all run unmodified on the host. It accepts
// only payloads that start with kMagic ("hil-host-fake-yolo11/1"), optionally followed by " imgsz=<S>"
// (S a multiple of 32, default 640); any other payload gives an empty graph, which dl::Model reports as a
// model without inputs. Build such a model with tests/host/firmware/test_host_build.py's fake_espdl().
//
// The graph (S = imgsz, input "images" int8 [1,S,S,3], exponent -7), for stride s in 8, 16, 32 (k = 0, 1, 2):
//   pick<s>  = MaxPool(images, kernel 1x1, stride s)      the pixel at (s*y, s*x)
//   pool<s>  = MaxPool(images, kernel sxs, stride s)      the brightest pixel of each cell
//   hot<s>   = Sub(pick<s>, 100)                          saturating int8, > 0 only for bright pixels
//   box<k>   = Pad(pool<s>, channels 3 -> 64, 0)          declared exponent -3
//   score<k> = Pad(hot<s>, channels 3 -> 80, -128)        declared exponent -2 (classes 0..2 can fire)
// All consumers of "images" run first, so the greedy planner frees its block for the later tensors, as it
// does for a real YOLO11 (the input is dead after the first conv). Test values: a synthetic input and the
// six outputs computed here by a plain reference of the three ops, so Model::test() checks esp-dl's kernels.
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "dl_tensor_base.hpp"
#include "esp_heap_caps.h"
#include "esp_log.h"
#include "fbs_model.hpp"

namespace fbs {

namespace {

const char *TAG = "FbsModel(host)";
constexpr const char *kMagic = "hil-host-fake-yolo11/1";
constexpr int kInputExponent = -7;
constexpr int kHotOffset = 100;
constexpr int kStrides[3] = {8, 16, 32};

struct Value {
    std::vector<int> shape;
    dl::dtype_t dtype = dl::DATA_TYPE_INT8;
    int exponent = 0;
};

struct Param {
    std::vector<int> shape;
    dl::dtype_t dtype;
    int exponent;
    std::vector<uint8_t> bytes;
};

struct Node {
    std::string type;
    std::vector<std::string> inputs, outputs;
    std::map<std::string, std::vector<int>> ints;
    std::map<std::string, std::string> strings;
    std::map<int, Param> params;  // by input index
};

struct Graph {
    int imgsz = 0;
    std::vector<std::string> order, inputs, outputs;
    std::map<std::string, Node> nodes;
    std::map<std::string, Value> values;
    std::map<std::string, Param> initializers;
    std::vector<int8_t> test_input;
    std::map<std::string, std::vector<int8_t>> test_outputs;
};

Param int64_param(const std::vector<int64_t> &v)
{
    Param p{{static_cast<int>(v.size())}, dl::DATA_TYPE_INT64, 0, {}};
    p.bytes.resize(v.size() * sizeof(int64_t));
    std::memcpy(p.bytes.data(), v.data(), p.bytes.size());
    return p;
}

Param int8_param(int8_t v, int exponent)
{
    return Param{{1}, dl::DATA_TYPE_INT8, exponent, {static_cast<uint8_t>(v)}};
}

void add_node(Graph &g, const std::string &name, Node n)
{
    for (size_t i = 0; i < n.inputs.size(); ++i) {
        auto it = n.params.find(static_cast<int>(i));
        if (it != n.params.end()) {
            g.initializers[n.inputs[i]] = it->second;
        }
    }
    g.order.push_back(name);
    g.nodes[name] = std::move(n);
}

// Reference of the three ops on NHWC int8, for the embedded test outputs.
std::vector<int8_t> ref_maxpool(const std::vector<int8_t> &in, int size, int kernel, int stride, int *out_size)
{
    const int o = (size - kernel) / stride + 1;
    *out_size = o;
    std::vector<int8_t> out(static_cast<size_t>(o) * o * 3);
    for (int y = 0; y < o; ++y) {
        for (int x = 0; x < o; ++x) {
            for (int c = 0; c < 3; ++c) {
                int m = -128;
                for (int dy = 0; dy < kernel; ++dy) {
                    for (int dx = 0; dx < kernel; ++dx) {
                        const int v = in[(static_cast<size_t>(y * stride + dy) * size + (x * stride + dx)) * 3 + c];
                        m = v > m ? v : m;
                    }
                }
                out[(static_cast<size_t>(y) * o + x) * 3 + c] = static_cast<int8_t>(m);
            }
        }
    }
    return out;
}

std::vector<int8_t> ref_pad_channels(const std::vector<int8_t> &in, int cells, int channels, int8_t value)
{
    std::vector<int8_t> out(static_cast<size_t>(cells) * channels, value);
    for (int i = 0; i < cells; ++i) {
        std::memcpy(&out[static_cast<size_t>(i) * channels], &in[static_cast<size_t>(i) * 3], 3);
    }
    return out;
}

Graph *build(int s)
{
    auto *g = new Graph;
    g->imgsz = s;
    g->inputs = {"images"};
    g->values["images"] = {{1, s, s, 3}, dl::DATA_TYPE_INT8, kInputExponent};
    for (int k = 0; k < 3; ++k) {  // every consumer of "images" first
        const int st = kStrides[k], o = s / st;
        const std::string n = std::to_string(st);
        Node pick{"MaxPool", {"images"}, {"pick" + n}, {{"kernel_shape", {1, 1}}, {"strides", {st, st}},
                                                        {"pads", {0, 0, 0, 0}}}, {}, {}};
        add_node(*g, "/pick" + n + "/MaxPool", pick);
        g->values["pick" + n] = {{1, o, o, 3}, dl::DATA_TYPE_INT8, kInputExponent};
    }
    for (int k = 0; k < 3; ++k) {
        const int st = kStrides[k], o = s / st;
        const std::string n = std::to_string(st);
        Node pool{"MaxPool", {"images"}, {"pool" + n}, {{"kernel_shape", {st, st}}, {"strides", {st, st}},
                                                        {"pads", {0, 0, 0, 0}}}, {}, {}};
        add_node(*g, "/pool" + n + "/MaxPool", pool);
        g->values["pool" + n] = {{1, o, o, 3}, dl::DATA_TYPE_INT8, kInputExponent};
    }
    for (int k = 0; k < 3; ++k) {
        const int st = kStrides[k], o = s / st;
        const std::string n = std::to_string(st);
        Node sub{"Sub", {"pick" + n, "hot_offset" + n}, {"hot" + n}, {}, {}, {}};
        sub.params[1] = int8_param(kHotOffset, kInputExponent);
        add_node(*g, "/hot" + n + "/Sub", sub);
        g->values["hot" + n] = {{1, o, o, 3}, dl::DATA_TYPE_INT8, kInputExponent};
    }
    for (int k = 0; k < 3; ++k) {
        const int st = kStrides[k], o = s / st;
        const std::string n = std::to_string(st), box = "box" + std::to_string(k), score = "score" + std::to_string(k);
        Node pb{"Pad", {"pool" + n, box + "_pads", box + "_value"}, {box}, {}, {{"mode", "constant"}}, {}};
        pb.params[1] = int64_param({0, 0, 0, 0, 0, 0, 0, 61});
        pb.params[2] = int8_param(0, -3);
        add_node(*g, "/" + box + "/Pad", pb);
        g->values[box] = {{1, o, o, 64}, dl::DATA_TYPE_INT8, -3};
        Node ps{"Pad", {"hot" + n, score + "_pads", score + "_value"}, {score}, {}, {{"mode", "constant"}}, {}};
        ps.params[1] = int64_param({0, 0, 0, 0, 0, 0, 0, 77});
        ps.params[2] = int8_param(-128, -2);
        add_node(*g, "/" + score + "/Pad", ps);
        g->values[score] = {{1, o, o, 80}, dl::DATA_TYPE_INT8, -2};
    }
    g->outputs = {"box0", "score0", "box1", "score1", "box2", "score2"};

    // Test values: a deterministic input (a gradient with a bright grid) and the reference outputs.
    g->test_input.resize(static_cast<size_t>(s) * s * 3);
    for (int y = 0; y < s; ++y) {
        for (int x = 0; x < s; ++x) {
            for (int c = 0; c < 3; ++c) {
                const bool bright = (x % 24 == 0) && (y % 40 == 0);
                g->test_input[(static_cast<size_t>(y) * s + x) * 3 + c] =
                    static_cast<int8_t>(bright ? 127 - c : (x * 3 + y * 5 + c * 11) % 90);
            }
        }
    }
    for (int k = 0; k < 3; ++k) {
        const int st = kStrides[k];
        int o = 0;
        std::vector<int8_t> pick = ref_maxpool(g->test_input, s, 1, st, &o);
        for (int8_t &v : pick) {
            const int d = v - kHotOffset;
            v = static_cast<int8_t>(d < -128 ? -128 : (d > 127 ? 127 : d));
        }
        std::vector<int8_t> pool = ref_maxpool(g->test_input, s, st, st, &o);
        g->test_outputs["box" + std::to_string(k)] = ref_pad_channels(pool, o * o, 64, 0);
        g->test_outputs["score" + std::to_string(k)] = ref_pad_channels(pick, o * o, 80, -128);
    }
    return g;
}

Graph *graph_of(const void *model)
{
    return static_cast<Graph *>(const_cast<void *>(model));
}

dl::TensorBase *tensor_of(const Param &p, uint32_t caps)
{
    return new dl::TensorBase(p.shape, p.bytes.data(), p.exponent, p.dtype, true, caps);
}

}  // namespace

FbsModel::FbsModel(const void *data, size_t size, model_location_type_t location, bool encrypt, bool rodata_move,
                   bool auto_free, bool param_copy) :
    m_param_copy(param_copy),
    m_location(location),
    m_encrypt(encrypt),
    m_rodata_move(rodata_move),
    m_auto_free(auto_free),
    m_size(size),
    m_data(static_cast<const uint8_t *>(data)),
    m_model(nullptr)
{
    const size_t n = std::strlen(kMagic);
    if (data == nullptr || size < n || std::memcmp(data, kMagic, n) != 0) {
        ESP_LOGE(TAG, "the host build runs only its fake model (payload starting \"%s\"): this payload is not one",
                 kMagic);
        m_model = new Graph;  // empty: no inputs, no nodes
        return;
    }
    std::string text(static_cast<const char *>(data) + n, size - n);
    int imgsz = 640;
    const size_t at = text.find("imgsz=");
    if (at != std::string::npos) {
        imgsz = std::atoi(text.c_str() + at + 6);
    }
    if (imgsz < 32 || imgsz % 32 != 0) {
        ESP_LOGE(TAG, "fake model imgsz %d is not a positive multiple of 32", imgsz);
        m_model = new Graph;
        return;
    }
    m_model = build(imgsz);
}

FbsModel::~FbsModel()
{
    delete graph_of(m_model);
    if (m_auto_free && m_data != nullptr) {
        heap_caps_free(const_cast<uint8_t *>(m_data));
    }
}

void FbsModel::print()
{
    ESP_LOGI(TAG, "fake YOLO11 graph, imgsz %d, %zu nodes", graph_of(m_model)->imgsz, graph_of(m_model)->order.size());
}

std::vector<std::string> FbsModel::topological_sort()
{
    return graph_of(m_model)->order;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name, std::string attribute_name, int &ret_value)
{
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    if (it == g->nodes.end()) {
        return ESP_FAIL;
    }
    auto a = it->second.ints.find(attribute_name);
    if (a == it->second.ints.end() || a->second.size() != 1) {
        return ESP_FAIL;
    }
    ret_value = a->second[0];
    return ESP_OK;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name, std::string attribute_name, float &ret_value)
{
    (void)node_name, (void)attribute_name, (void)ret_value;
    return ESP_FAIL;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name, std::string attribute_name, std::string &ret_value)
{
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    if (it == g->nodes.end()) {
        return ESP_FAIL;
    }
    auto a = it->second.strings.find(attribute_name);
    if (a == it->second.strings.end()) {
        return ESP_FAIL;
    }
    ret_value = a->second;
    return ESP_OK;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name,
                                            std::string attribute_name,
                                            std::vector<int> &ret_value)
{
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    if (it == g->nodes.end()) {
        return ESP_FAIL;
    }
    auto a = it->second.ints.find(attribute_name);
    if (a == it->second.ints.end()) {
        return ESP_FAIL;
    }
    ret_value = a->second;
    return ESP_OK;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name,
                                            std::string attribute_name,
                                            std::vector<float> &ret_value)
{
    (void)node_name, (void)attribute_name, (void)ret_value;
    return ESP_FAIL;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name,
                                            std::string attribute_name,
                                            dl::quant_type_t &ret_value)
{
    (void)attribute_name;
    const Graph *g = graph_of(m_model);
    if (g->nodes.find(node_name) == g->nodes.end()) {
        ret_value = dl::QUANT_TYPE_NONE;
        return ESP_FAIL;
    }
    ret_value = dl::QUANT_TYPE_SYMM_8BIT;  // every op of the fake graph is int8
    return ESP_OK;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name,
                                            std::string attribute_name,
                                            dl::activation_type_t &ret_value)
{
    (void)node_name, (void)attribute_name;
    ret_value = dl::Linear;
    return ESP_FAIL;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name,
                                            std::string attribute_name,
                                            dl::resize_mode_t &ret_value)
{
    (void)node_name, (void)attribute_name;
    ret_value = dl::RESIZE_NEAREST;
    return ESP_FAIL;
}

esp_err_t FbsModel::get_operation_attribute(std::string node_name,
                                            std::string attribute_name,
                                            dl::TensorBase *&ret_value)
{
    (void)node_name, (void)attribute_name;
    ret_value = nullptr;
    return ESP_FAIL;
}

esp_err_t FbsModel::get_operation_input_shape(std::string node_name, int index, std::vector<int> &ret_value)
{
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    if (it == g->nodes.end() || index < 0 || index >= static_cast<int>(it->second.inputs.size())) {
        return ESP_FAIL;
    }
    ret_value = get_value_info_shape(it->second.inputs[index]);
    return ESP_OK;
}

esp_err_t FbsModel::get_operation_output_shape(std::string node_name, int index, std::vector<int> &ret_value)
{
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    if (it == g->nodes.end() || index < 0 || index >= static_cast<int>(it->second.outputs.size())) {
        return ESP_FAIL;
    }
    ret_value = get_value_info_shape(it->second.outputs[index]);
    return ESP_OK;
}

esp_err_t FbsModel::get_operation_inputs_and_outputs(std::string node_name,
                                                     std::vector<std::string> &inputs,
                                                     std::vector<std::string> &outputs)
{
    inputs.clear();
    outputs.clear();
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    if (it == g->nodes.end()) {
        return ESP_FAIL;
    }
    inputs = it->second.inputs;
    outputs = it->second.outputs;
    return ESP_OK;
}

std::string FbsModel::get_operation_type(std::string node_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    return it == g->nodes.end() ? std::string() : it->second.type;
}

dl::TensorBase *FbsModel::get_operation_parameter(std::string node_name, int index, uint32_t caps)
{
    const Graph *g = graph_of(m_model);
    auto it = g->nodes.find(node_name);
    if (it == g->nodes.end()) {
        return nullptr;
    }
    auto p = it->second.params.find(index);
    return p == it->second.params.end() ? nullptr : tensor_of(p->second, caps);
}

dl::TensorBase *FbsModel::get_operation_lut(std::string node_name, uint32_t caps, std::string attribute_name)
{
    (void)node_name, (void)caps, (void)attribute_name;
    return nullptr;
}

bool FbsModel::is_parameter(std::string name)
{
    const Graph *g = graph_of(m_model);
    return g->initializers.find(name) != g->initializers.end();
}

const void *FbsModel::get_tensor_raw_data(std::string tensor_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->initializers.find(tensor_name);
    return it == g->initializers.end() ? nullptr : it->second.bytes.data();
}

dl::dtype_t FbsModel::get_tensor_dtype(std::string tensor_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->initializers.find(tensor_name);
    return it == g->initializers.end() ? dl::DATA_TYPE_UNDEFINED : it->second.dtype;
}

std::vector<int> FbsModel::get_tensor_shape(std::string tensor_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->initializers.find(tensor_name);
    return it == g->initializers.end() ? std::vector<int>{} : it->second.shape;
}

std::vector<int> FbsModel::get_tensor_exponents(std::string tensor_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->initializers.find(tensor_name);
    return it == g->initializers.end() ? std::vector<int>{} : std::vector<int>{it->second.exponent};
}

dl::dtype_t FbsModel::get_value_info_dtype(std::string var_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->values.find(var_name);
    return it == g->values.end() ? dl::DATA_TYPE_UNDEFINED : it->second.dtype;
}

std::vector<int> FbsModel::get_value_info_shape(std::string var_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->values.find(var_name);
    return it == g->values.end() ? std::vector<int>{} : it->second.shape;
}

int FbsModel::get_value_info_exponent(std::string var_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->values.find(var_name);
    return it == g->values.end() ? 0 : it->second.exponent;
}

const void *FbsModel::get_test_input_tensor_raw_data(std::string tensor_name)
{
    const Graph *g = graph_of(m_model);
    return tensor_name == "images" && !g->test_input.empty() ? g->test_input.data() : nullptr;
}

const void *FbsModel::get_test_output_tensor_raw_data(std::string tensor_name)
{
    const Graph *g = graph_of(m_model);
    auto it = g->test_outputs.find(tensor_name);
    return it == g->test_outputs.end() ? nullptr : it->second.data();
}

dl::TensorBase *FbsModel::get_test_input_tensor(std::string tensor_name)
{
    const void *raw = get_test_input_tensor_raw_data(tensor_name);
    if (raw == nullptr) {
        return nullptr;
    }
    const Value &v = graph_of(m_model)->values.at(tensor_name);
    return new dl::TensorBase(v.shape, raw, v.exponent, v.dtype, true, MALLOC_CAP_DEFAULT);
}

dl::TensorBase *FbsModel::get_test_output_tensor(std::string tensor_name)
{
    const void *raw = get_test_output_tensor_raw_data(tensor_name);
    if (raw == nullptr) {
        return nullptr;
    }
    const Value &v = graph_of(m_model)->values.at(tensor_name);
    return new dl::TensorBase(v.shape, raw, v.exponent, v.dtype, true, MALLOC_CAP_DEFAULT);
}

std::vector<std::string> FbsModel::get_test_outputs_name()
{
    std::vector<std::string> names;
    for (const auto &kv : graph_of(m_model)->test_outputs) {
        names.push_back(kv.first);
    }
    return names;
}

std::vector<std::string> FbsModel::get_graph_inputs()
{
    return graph_of(m_model)->inputs;
}

std::vector<std::string> FbsModel::get_graph_outputs()
{
    return graph_of(m_model)->outputs;
}

void FbsModel::clear_map()
{
}

void FbsModel::load_map()
{
}

std::string FbsModel::get_model_name()
{
    return "hil_host_fake_yolo11";
}

int64_t FbsModel::get_model_version()
{
    return 1;
}

std::string FbsModel::get_model_doc_string()
{
    return "host build fake YOLO11 graph (firmware/host/src/fbs_model_host.cpp)";
}

std::string FbsModel::get_model_metadata_prop(const std::string &key)
{
    (void)key;
    return "";
}

void FbsModel::get_model_size(size_t *internal_size, size_t *psram_size, size_t *psram_rodata_size,
                              size_t *flash_size)
{
    *internal_size = 0;
    *psram_size = 0;
    *psram_rodata_size = 0;
    *flash_size = m_size;
}

}  // namespace fbs
