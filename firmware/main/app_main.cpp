// yolo11_hil firmware entry: bring up the console transport, load the model, announce the boot,
// then serve protocol requests forever (docs/protocol.md).
#include <cstdio>

#include "device_info.hpp"
#include "esp_backend.hpp"
#include "esp_log.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "hil_protocol/records.hpp"
#include "hil_protocol/service.hpp"
#include "model_runner.hpp"
#include "sdkconfig.h"
#include "transport.hpp"

namespace {

const char *TAG = "hil";

void serve(void *)
{
    static hil_fw::Transport transport;
    static hil_fw::ModelRunner model;
    if (!transport.begin(CONFIG_HIL_RX_BUFFER)) {
        ESP_LOGE(TAG, "console driver install failed; cannot serve the protocol");
        vTaskDelete(nullptr);
        return;
    }
    model.load(CONFIG_HIL_MODEL_PARTITION);

    hil_fw::EspBackend backend(transport, model);
    hil::Limits limits;
    limits.max_image = CONFIG_HIL_MAX_IMAGE_BYTES;
    limits.chunk_max = CONFIG_HIL_CHUNK_MAX;
    limits.window_max = CONFIG_HIL_WINDOW_MAX;
    limits.rx_buffer = transport.rx_buffer();
    limits.upload_timeout_ms = CONFIG_HIL_UPLOAD_TIMEOUT_MS;
    limits.queue = CONFIG_HIL_QUEUE_DEPTH;
    hil::Service service(backend, limits);

    // The boot record: the host learns that the device (re)started and in which state.
    backend.send(hil::boot_record(hil_fw::reset_reason(), hil_fw::app_elf_sha256(), model.state(),
                                  model.model_sha256()));

    static uint8_t buf[4096];
    // While a queued detect computes on the worker task, its end is noticed in poll(): read with a one-tick
    // timeout then, so the answer leaves at most one tick (1 ms at CONFIG_FREERTOS_HZ=1000) after the result.
    const uint32_t tick_ms = portTICK_PERIOD_MS > 0 ? portTICK_PERIOD_MS : 1;
    while (true) {
        const size_t n = transport.read(buf, sizeof(buf), service.computing() ? tick_ms : 50);
        if (n > 0) {
            service.feed(buf, n);
        }
        service.poll();
    }
}

}  // namespace

extern "C" void app_main(void)
{
    // A task of our own: app_main's default stack is too small for esp-dl and the protocol.
    // The service task is not subscribed to the task watchdog; sdkconfig.defaults turns off the
    // idle-task checks that a 26 s single inference on ESP32-S3 would trip.
    xTaskCreatePinnedToCore(serve, "hil", CONFIG_HIL_TASK_STACK, nullptr, 5, nullptr, 0);
}
