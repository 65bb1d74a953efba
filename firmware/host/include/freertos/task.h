// Host stand-in for FreeRTOS task.h as ESP-IDF v5.5 ships it. A task is a detached POSIX thread; the
// core affinity and priority are recorded but not enforced.
#pragma once

#include "freertos/FreeRTOS.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*TaskFunction_t)(void *);
typedef struct hil_host_task *TaskHandle_t;
typedef struct {
    uint8_t opaque[64];
} StaticTask_t;

BaseType_t xTaskCreatePinnedToCore(TaskFunction_t fn, const char *name, uint32_t stack_depth, void *arg,
                                   UBaseType_t priority, TaskHandle_t *out_handle, BaseType_t core_id);
TaskHandle_t xTaskCreateStaticPinnedToCore(TaskFunction_t fn, const char *name, uint32_t stack_depth, void *arg,
                                           UBaseType_t priority, StackType_t *stack, StaticTask_t *task_buffer,
                                           BaseType_t core_id);
static inline BaseType_t xTaskCreate(TaskFunction_t fn, const char *name, uint32_t stack_depth, void *arg,
                                     UBaseType_t priority, TaskHandle_t *out_handle)
{
    return xTaskCreatePinnedToCore(fn, name, stack_depth, arg, priority, out_handle, tskNO_AFFINITY);
}
// vTaskDelete(NULL) ends the calling task (its thread); deleting another task is not supported on the host.
void vTaskDelete(TaskHandle_t task);
void vTaskDelay(TickType_t ticks);
TickType_t xTaskGetTickCount(void);
TaskHandle_t xTaskGetCurrentTaskHandle(void);
UBaseType_t uxTaskPriorityGet(TaskHandle_t task);
void vTaskPrioritySet(TaskHandle_t task, UBaseType_t priority);
BaseType_t xTaskNotifyGive(TaskHandle_t task);
uint32_t ulTaskNotifyTake(BaseType_t clear_on_exit, TickType_t ticks);

#ifdef __cplusplus
}
#endif
