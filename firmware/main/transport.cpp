// Console transport over UART or USB-Serial-JTAG (see transport.hpp).
#include "transport.hpp"

#include <cstdio>

#include "freertos/FreeRTOS.h"
#include "sdkconfig.h"

#if CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG
#include "driver/usb_serial_jtag.h"
#include "driver/usb_serial_jtag_vfs.h"
#elif CONFIG_ESP_CONSOLE_UART
#include "driver/uart.h"
#include "driver/uart_vfs.h"
#else
#error "yolo11_hil needs the console on a UART or on USB-Serial-JTAG (sdkconfig.ci.uart / sdkconfig.ci.usj)"
#endif

namespace hil_fw {

#if CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG

bool Transport::begin(size_t rx_buffer)
{
    usb_serial_jtag_driver_config_t cfg = USB_SERIAL_JTAG_DRIVER_CONFIG_DEFAULT();
    cfg.rx_buffer_size = static_cast<uint32_t>(rx_buffer);
    cfg.tx_buffer_size = 16384;
    if (usb_serial_jtag_driver_install(&cfg) != ESP_OK) {
        return false;
    }
    usb_serial_jtag_vfs_use_driver();  // stdout (logs and records) through the driver: blocking, no drops
    rx_buffer_ = rx_buffer;
    return true;
}

size_t Transport::read(uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    // A single ring-buffer receive: returns what is there (partial reads are normal).
    const int n = usb_serial_jtag_read_bytes(buf, static_cast<uint32_t>(len), pdMS_TO_TICKS(timeout_ms));
    return n > 0 ? static_cast<size_t>(n) : 0;
}

const char *Transport::name() const
{
    return "usj";
}

#else  // UART console

static const uart_port_t kPort = static_cast<uart_port_t>(CONFIG_ESP_CONSOLE_UART_NUM);

bool Transport::begin(size_t rx_buffer)
{
    fflush(stdout);
    if (uart_driver_install(kPort, static_cast<int>(rx_buffer), 16384, 0, nullptr, 0) != ESP_OK) {
        return false;
    }
    uart_vfs_dev_use_driver(kPort);  // stdout through the interrupt-driven driver
    rx_buffer_ = rx_buffer;
    return true;
}

size_t Transport::read(uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    // uart_read_bytes waits until `len` bytes or the timeout; ask only for what is buffered (at
    // least one byte) so a short request line is handled at once.
    size_t avail = 0;
    uart_get_buffered_data_len(kPort, &avail);
    const size_t want = avail == 0 ? 1 : (avail < len ? avail : len);
    const int n = uart_read_bytes(kPort, buf, static_cast<uint32_t>(want), pdMS_TO_TICKS(timeout_ms));
    return n > 0 ? static_cast<size_t>(n) : 0;
}

const char *Transport::name() const
{
    return "uart";
}

#endif

void Transport::write_line(const char *data, size_t len)
{
    // One fwrite under the stdout lock: ESP_LOG output from other tasks lands before or after, never inside.
    fwrite(data, 1, len, stdout);
    fflush(stdout);
}

}  // namespace hil_fw
