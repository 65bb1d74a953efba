// The console drivers on the host (include/driver/uart.h, usb_serial_jtag.h): the port is the process's
// stdin (reads) and stdout (records and logs, through stdio as on the chip). The tests run the app with a
// pty on both. Installing a driver switches that terminal to raw mode; output keeps LF -> CR LF when
// CONFIG_NEWLIB_STDOUT_LINE_ENDING_CRLF is set, which is what the chip's console sends. When the other end
// of the console goes away (EOF or EIO on read) the process ends: there is no one left to serve.
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "driver/uart.h"
#include "driver/uart_vfs.h"
#include "driver/usb_serial_jtag.h"
#include "driver/usb_serial_jtag_vfs.h"
#include "sdkconfig.h"

namespace {

bool g_installed = false;

void make_raw(int fd)
{
    if (!isatty(fd)) {
        return;
    }
    termios t;
    if (tcgetattr(fd, &t) != 0) {
        return;
    }
    cfmakeraw(&t);
#if CONFIG_NEWLIB_STDOUT_LINE_ENDING_CRLF
    t.c_oflag |= OPOST | ONLCR;
#endif
    tcsetattr(fd, TCSANOW, &t);
}

void install()
{
    make_raw(STDIN_FILENO);
    make_raw(STDOUT_FILENO);
    g_installed = true;
}

// Wait up to timeout_ms for input; read what is there (at most len). -1 never: a closed console exits.
int read_some(uint8_t *buf, size_t len, int timeout_ms)
{
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int r = poll(&p, 1, timeout_ms);
    if (r == 0) {
        return 0;
    }
    if (r < 0) {
        return errno == EINTR ? 0 : -1;
    }
    const ssize_t n = read(STDIN_FILENO, buf, len);
    if (n > 0) {
        return static_cast<int>(n);
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return 0;
    }
    std::fprintf(stderr, "console closed (%s): host app exits\n", n == 0 ? "EOF" : "read error");
    std::fflush(stdout);
    std::_Exit(0);
}

int ticks_to_ms(TickType_t ticks)
{
    if (ticks == portMAX_DELAY) {
        return -1;
    }
    return static_cast<int>(pdTICKS_TO_MS(ticks));
}

}  // namespace

extern "C" {

esp_err_t uart_driver_install(uart_port_t uart_num, int rx_buffer_size, int tx_buffer_size, int queue_size,
                              QueueHandle_t *uart_queue, int intr_alloc_flags)
{
    (void)tx_buffer_size, (void)queue_size, (void)uart_queue, (void)intr_alloc_flags;
    if (uart_num < 0 || uart_num >= UART_NUM_MAX || rx_buffer_size <= 128 || g_installed) {
        return ESP_ERR_INVALID_ARG;  // as ESP-IDF: the rx buffer must exceed the 128-byte FIFO
    }
    install();
    return ESP_OK;
}

esp_err_t uart_driver_delete(uart_port_t uart_num)
{
    (void)uart_num;
    g_installed = false;
    return ESP_OK;
}

bool uart_is_driver_installed(uart_port_t uart_num)
{
    (void)uart_num;
    return g_installed;
}

// As ESP-IDF: until `length` bytes arrived or a wait of ticks_to_wait for the next bytes expired.
int uart_read_bytes(uart_port_t uart_num, void *buf, uint32_t length, TickType_t ticks_to_wait)
{
    (void)uart_num;
    auto *p = static_cast<uint8_t *>(buf);
    uint32_t got = 0;
    while (got < length) {
        const int n = read_some(p + got, length - got, ticks_to_ms(ticks_to_wait));
        if (n <= 0) {
            break;
        }
        got += static_cast<uint32_t>(n);
    }
    return static_cast<int>(got);
}

int uart_write_bytes(uart_port_t uart_num, const void *src, size_t size)
{
    (void)uart_num;
    const size_t n = fwrite(src, 1, size, stdout);
    fflush(stdout);
    return static_cast<int>(n);
}

esp_err_t uart_get_buffered_data_len(uart_port_t uart_num, size_t *size)
{
    (void)uart_num;
    int n = 0;
    if (ioctl(STDIN_FILENO, FIONREAD, &n) != 0) {
        n = 0;
    }
    *size = static_cast<size_t>(n);
    return ESP_OK;
}

esp_err_t uart_flush_input(uart_port_t uart_num)
{
    (void)uart_num;
    tcflush(STDIN_FILENO, TCIFLUSH);
    return ESP_OK;
}

void uart_vfs_dev_use_driver(int uart_num)
{
    (void)uart_num;
}

void uart_vfs_dev_use_nonblocking(int uart_num)
{
    (void)uart_num;
}

esp_err_t usb_serial_jtag_driver_install(usb_serial_jtag_driver_config_t *config)
{
    if (config == nullptr || config->rx_buffer_size == 0 || config->tx_buffer_size == 0 || g_installed) {
        return ESP_ERR_INVALID_ARG;
    }
    install();
    return ESP_OK;
}

esp_err_t usb_serial_jtag_driver_uninstall(void)
{
    g_installed = false;
    return ESP_OK;
}

// As ESP-IDF: a single receive, whatever is available up to `length` after waiting at most ticks_to_wait.
int usb_serial_jtag_read_bytes(void *buf, uint32_t length, TickType_t ticks_to_wait)
{
    const int n = read_some(static_cast<uint8_t *>(buf), length, ticks_to_ms(ticks_to_wait));
    return n > 0 ? n : 0;
}

int usb_serial_jtag_write_bytes(const void *src, size_t size, TickType_t ticks_to_wait)
{
    (void)ticks_to_wait;
    const size_t n = fwrite(src, 1, size, stdout);
    fflush(stdout);
    return static_cast<int>(n);
}

bool usb_serial_jtag_is_connected(void)
{
    return true;
}

bool usb_serial_jtag_is_driver_installed(void)
{
    return g_installed;
}

void usb_serial_jtag_vfs_use_driver(void)
{
}

void usb_serial_jtag_vfs_use_nonblocking(void)
{
}

}  // extern "C"
