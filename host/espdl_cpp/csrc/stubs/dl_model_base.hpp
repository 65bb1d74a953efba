/* Host stand-in for esp-dl's dl/model/include/dl_model_base.hpp.
 *
 * ImagePreprocessor and the detect postprocessors use a dl::Model only to look up its input and output
 * tensors by name (get_input / get_output). The host build has no .espdl to load: the shim (hil_shim.cpp)
 * wraps the caller's buffers in dl::TensorBase objects (deep = false) and registers them here by name. */
#pragma once
#include "dl_tensor_base.hpp"
#include <map>
#include <string>

namespace dl {
class Model {
public:
    std::map<std::string, TensorBase *> inputs;
    std::map<std::string, TensorBase *> outputs;

    TensorBase *get_input(const std::string &name = "")
    {
        if (name.empty()) return inputs.empty() ? nullptr : inputs.begin()->second;
        auto it = inputs.find(name);
        return it == inputs.end() ? nullptr : it->second;
    }
    TensorBase *get_input() { return get_input(std::string()); }

    TensorBase *get_output(const std::string &name = "")
    {
        if (name.empty()) return outputs.empty() ? nullptr : outputs.begin()->second;
        auto it = outputs.find(name);
        return it == outputs.end() ? nullptr : it->second;
    }
    TensorBase *get_output() { return get_output(std::string()); }
};
} // namespace dl
