/* fuzz_replay.c - run the fuzz target over files, without libFuzzer: how
 * `make test` replays the seed corpus under ASan and UBSan with gcc. A crash
 * or sanitizer report fails the run (the sanitizers abort). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *fp = fopen(argv[i], "rb");
        if (!fp) {
            perror(argv[i]);
            return 1;
        }
        static uint8_t buf[8 << 20];
        size_t n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_replay: %d inputs, no failures\n", argc - 1);
    return 0;
}
