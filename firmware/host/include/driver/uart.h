// Host stand-in for ESP-IDF's driver/uart.h (component esp_driver_uart, v5.5). The console UART is the
// process's stdin (the host test puts a pty behind it): uart_driver_install puts that terminal in raw
// mode (no echo, no line discipline: bytes in as sent), keeping output CR-LF translation when
// CONFIG_NEWLIB_STDOUT_LINE_ENDING_CRLF is set, as newlib's stdout does on the chip.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "freertos/FreeRTOS.h"
#include "freertos/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int uart_port_t;
#define UART_NUM_0 (0)
#define UART_NUM_1 (1)
#define UART_NUM_MAX (2)

esp_err_t uart_driver_install(uart_port_t uart_num, int rx_buffer_size, int tx_buffer_size, int queue_size,
                              QueueHandle_t *uart_queue, int intr_alloc_flags);
esp_err_t uart_driver_delete(uart_port_t uart_num);
bool uart_is_driver_installed(uart_port_t uart_num);
int uart_read_bytes(uart_port_t uart_num, void *buf, uint32_t length, TickType_t ticks_to_wait);
int uart_write_bytes(uart_port_t uart_num, const void *src, size_t size);
esp_err_t uart_get_buffered_data_len(uart_port_t uart_num, size_t *size);
esp_err_t uart_flush_input(uart_port_t uart_num);

#ifdef __cplusplus
}
#endif
