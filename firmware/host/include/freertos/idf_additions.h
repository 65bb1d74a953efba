// Host stand-in for ESP-IDF's freertos/idf_additions.h (v5.5): the pinned-task API lives in task.h here.
#pragma once

#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
