// FreeRTOS tasks on the host (include/freertos/task.h): each task is a POSIX thread. Priorities and core
// affinity are recorded, not enforced. A task function that returns is a bug FreeRTOS traps; so does this.
#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

struct hil_host_task {
    pthread_t thread{};
    TaskFunction_t fn = nullptr;
    void *arg = nullptr;
    UBaseType_t priority = 0;
    std::string name;
    // The task's notification value (xTaskNotifyGive / ulTaskNotifyTake).
    std::mutex notify_mutex;
    std::condition_variable notify_cv;
    uint32_t notify_value = 0;
};

namespace {

thread_local hil_host_task *t_current = nullptr;

void *task_main(void *p)
{
    auto *task = static_cast<hil_host_task *>(p);
    t_current = task;
    task->fn(task->arg);
    std::fprintf(stderr, "FreeRTOS: task '%s' returned from its function (tasks must call vTaskDelete)\n",
                 task->name.c_str());
    std::abort();
}

}  // namespace

extern "C" {

BaseType_t xTaskCreatePinnedToCore(TaskFunction_t fn, const char *name, uint32_t stack_depth, void *arg,
                                   UBaseType_t priority, TaskHandle_t *out_handle, BaseType_t core_id)
{
    (void)core_id;
    auto *task = new hil_host_task;
    task->fn = fn;
    task->arg = arg;
    task->priority = priority;
    task->name = name ? name : "";
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    // ESP-IDF stack depths are bytes for 32-bit code built with -O2; 64-bit -O0 frames are several times
    // larger, so a host task gets at least 8 MiB.
    pthread_attr_setstacksize(&attr, std::max<size_t>(stack_depth, 8u << 20));
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int rc = pthread_create(&task->thread, &attr, task_main, task);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        delete task;
        return pdFAIL;
    }
    if (out_handle != nullptr) {
        *out_handle = task;
    }
    return pdPASS;
}

void vTaskDelete(TaskHandle_t task)
{
    if (task == nullptr || task == t_current) {
        pthread_exit(nullptr);
    }
    std::fprintf(stderr, "FreeRTOS host: deleting another task is not supported\n");
    std::abort();
}

void vTaskDelay(TickType_t ticks)
{
    const uint64_t us = static_cast<uint64_t>(ticks) * 1000000ULL / configTICK_RATE_HZ;
    timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
    nanosleep(&ts, nullptr);
}

TickType_t xTaskGetTickCount(void)
{
    return static_cast<TickType_t>(esp_timer_get_time() * configTICK_RATE_HZ / 1000000);
}

TaskHandle_t xTaskGetCurrentTaskHandle(void)
{
    return t_current;
}

UBaseType_t uxTaskPriorityGet(TaskHandle_t task)
{
    task = task ? task : t_current;
    return task ? task->priority : 0;
}

void vTaskPrioritySet(TaskHandle_t task, UBaseType_t priority)
{
    task = task ? task : t_current;
    if (task) {
        task->priority = priority;
    }
}

BaseType_t xPortGetCoreID(void)
{
    return 0;
}

BaseType_t xTaskNotifyGive(TaskHandle_t task)
{
    if (task == nullptr) {
        std::fprintf(stderr, "FreeRTOS host: xTaskNotifyGive(NULL)\n");
        std::abort();
    }
    {
        std::lock_guard<std::mutex> lock(task->notify_mutex);
        ++task->notify_value;
    }
    task->notify_cv.notify_all();
    return pdPASS;
}

uint32_t ulTaskNotifyTake(BaseType_t clear_on_exit, TickType_t ticks)
{
    hil_host_task *task = t_current;
    if (task == nullptr) {
        std::fprintf(stderr, "FreeRTOS host: ulTaskNotifyTake outside a task\n");
        std::abort();
    }
    std::unique_lock<std::mutex> lock(task->notify_mutex);
    const auto ready = [task] { return task->notify_value != 0; };
    if (ticks == portMAX_DELAY) {
        task->notify_cv.wait(lock, ready);
    } else {
        task->notify_cv.wait_for(lock, std::chrono::milliseconds(pdTICKS_TO_MS(ticks)), ready);
    }
    const uint32_t value = task->notify_value;
    if (value != 0) {
        task->notify_value = clear_on_exit ? 0 : value - 1;
    }
    return value;
}

}  // extern "C"
