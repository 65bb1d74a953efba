// Host stand-in for FreeRTOS queue.h (ESP-IDF v5.5): only the handle type driver/uart.h names.
#pragma once

#include "freertos/FreeRTOS.h"

typedef struct hil_host_queue *QueueHandle_t;
