// Host stand-in for ESP-IDF's driver/usb_serial_jtag.h (component esp_driver_usb_serial_jtag, v5.5). As
// the UART stand-in, the port is the process's stdin/stdout (a pty in the host test), raw mode.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"
#include "freertos/FreeRTOS.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t tx_buffer_size;
    uint32_t rx_buffer_size;
} usb_serial_jtag_driver_config_t;

// As ESP-IDF defines it (a C compound literal, which the firmware's C++ uses as ESP-IDF's examples do).
#define USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT() \
    (usb_serial_jtag_driver_config_t) { .tx_buffer_size = 256, .rx_buffer_size = 256, }

esp_err_t usb_serial_jtag_driver_install(usb_serial_jtag_driver_config_t *usb_serial_jtag_config);
esp_err_t usb_serial_jtag_driver_uninstall(void);
int usb_serial_jtag_read_bytes(void *buf, uint32_t length, TickType_t ticks_to_wait);
int usb_serial_jtag_write_bytes(const void *src, size_t size, TickType_t ticks_to_wait);
bool usb_serial_jtag_is_connected(void);
bool usb_serial_jtag_is_driver_installed(void);

#ifdef __cplusplus
}
#endif
