// Process entry of the host app: what ESP-IDF's startup does after the scheduler starts. app_main runs in
// the main task; when it returns the main task ends and the tasks it created keep running.
#include <pthread.h>

#include "esp_app_desc.h"

extern "C" void app_main(void);

int main()
{
    char elf_sha256[65];
    esp_app_get_elf_sha256(elf_sha256, sizeof(elf_sha256));  // while /proc/self/exe still resolves
    app_main();
    pthread_exit(nullptr);  // the process lives on while the firmware's tasks run
}
