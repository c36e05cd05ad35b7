/*
 * ecjpake_peer: drives mbedTLS's EC-JPAKE (secp256r1, SHA-256) from a line protocol, so a test
 * written in another language can use mbedTLS as an independent handshake peer.
 *
 * Usage: ecjpake_peer client|server PASSWORD_HEX
 *
 * Commands on stdin, one per line; one answer line per command on stdout:
 *   keys <x1> <x2> -> "ok": fix our two round-one private keys (hex), as mbedTLS's own
 *                     vector tests do; the next w1 still draws fresh ones, so use either
 *                     this or w1 (needs the context fields, public in mbedTLS 2.x)
 *   w1          -> "ok <hex of our round one>"
 *   r1 <hex>    -> "ok" or "err <mbedTLS error code>"
 *   w2          -> "ok <hex of our round two>"
 *   r2 <hex>    -> "ok" or "err <code>"
 *   secret      -> "ok <hex of the 32-byte derived secret>"
 *   quit        -> exits 0
 * Anything else answers "err bad-command". Randomness comes from mbedTLS's entropy + CTR_DRBG.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/ecjpake.h"
#include "mbedtls/entropy.h"

#if defined(MBEDTLS_PRIVATE)
#define FIELD(name) MBEDTLS_PRIVATE(name)
#else
#define FIELD(name) name
#endif

#define MAX_MESSAGE 1024
#define MAX_LINE (2 * MAX_MESSAGE + 64)

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Returns the decoded length, or -1 on malformed hex / overflow. */
static long parse_hex(const char *text, unsigned char *out, size_t capacity)
{
    size_t digits = strlen(text);
    size_t i;

    if (digits % 2 != 0 || digits / 2 > capacity) {
        return -1;
    }
    for (i = 0; i < digits / 2; i++) {
        int high = hex_value(text[2 * i]);
        int low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0) {
            return -1;
        }
        out[i] = (unsigned char) ((high << 4) | low);
    }
    return (long) (digits / 2);
}

/* Same as mbedTLS's test suites: set xm1, xm2 and derive Xm1 = xm1.G, Xm2 = xm2.G. */
static int load_keys(mbedtls_ecjpake_context *ctx, const char *argument)
{
    static unsigned char key[2][MAX_MESSAGE];
    char first[2 * MAX_MESSAGE + 1];
    const char *space = strchr(argument, ' ');
    long length[2];
    int ret;

    if (space == NULL || (size_t) (space - argument) >= sizeof(first)) {
        return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    }
    memcpy(first, argument, (size_t) (space - argument));
    first[space - argument] = '\0';
    length[0] = parse_hex(first, key[0], sizeof(key[0]));
    length[1] = parse_hex(space + 1, key[1], sizeof(key[1]));
    if (length[0] <= 0 || length[1] <= 0) {
        return MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    }
    ret = mbedtls_mpi_read_binary(&ctx->FIELD(xm1), key[0], (size_t) length[0]);
    if (ret == 0) {
        ret = mbedtls_mpi_read_binary(&ctx->FIELD(xm2), key[1], (size_t) length[1]);
    }
    if (ret == 0) {
        ret = mbedtls_ecp_mul(&ctx->FIELD(grp), &ctx->FIELD(Xm1), &ctx->FIELD(xm1),
                              &ctx->FIELD(grp).G, NULL, NULL);
    }
    if (ret == 0) {
        ret = mbedtls_ecp_mul(&ctx->FIELD(grp), &ctx->FIELD(Xm2), &ctx->FIELD(xm2),
                              &ctx->FIELD(grp).G, NULL, NULL);
    }
    return ret;
}

static void print_ok_hex(const unsigned char *data, size_t length)
{
    size_t i;

    fputs("ok ", stdout);
    for (i = 0; i < length; i++) {
        printf("%02x", data[i]);
    }
    putchar('\n');
}

static void print_result(int ret)
{
    if (ret == 0) {
        puts("ok");
    } else {
        printf("err -0x%04x\n", (unsigned int) -ret);
    }
}

int main(int argc, char **argv)
{
    mbedtls_ecjpake_context ctx;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ecjpake_role role;
    static unsigned char password[256];
    static unsigned char message[MAX_MESSAGE];
    static char line[MAX_LINE];
    const char *personalization = "fwsim ecjpake_peer";
    long password_length;
    size_t length;
    int ret;

    if (argc != 3 || (strcmp(argv[1], "client") != 0 && strcmp(argv[1], "server") != 0)) {
        fprintf(stderr, "usage: %s client|server PASSWORD_HEX\n", argv[0]);
        return 2;
    }
    role = strcmp(argv[1], "client") == 0 ? MBEDTLS_ECJPAKE_CLIENT : MBEDTLS_ECJPAKE_SERVER;
    password_length = parse_hex(argv[2], password, sizeof(password));
    if (password_length < 0) {
        fprintf(stderr, "bad password hex\n");
        return 2;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    mbedtls_ecjpake_init(&ctx);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);

    ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                (const unsigned char *) personalization, strlen(personalization));
    if (ret == 0) {
        ret = mbedtls_ecjpake_setup(&ctx, role, MBEDTLS_MD_SHA256, MBEDTLS_ECP_DP_SECP256R1,
                                    password, (size_t) password_length);
    }
    if (ret != 0) {
        fprintf(stderr, "setup failed: -0x%04x\n", (unsigned int) -ret);
        return 1;
    }

    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *argument;

        line[strcspn(line, "\r\n")] = '\0';
        argument = strchr(line, ' ');
        if (argument != NULL) {
            *argument++ = '\0';
        } else {
            argument = line + strlen(line);
        }

        if (strcmp(line, "keys") == 0) {
            print_result(load_keys(&ctx, argument));
        } else if (strcmp(line, "w1") == 0 || strcmp(line, "w2") == 0) {
            ret = line[1] == '1'
                ? mbedtls_ecjpake_write_round_one(&ctx, message, sizeof(message), &length,
                                                  mbedtls_ctr_drbg_random, &drbg)
                : mbedtls_ecjpake_write_round_two(&ctx, message, sizeof(message), &length,
                                                  mbedtls_ctr_drbg_random, &drbg);
            if (ret == 0) {
                print_ok_hex(message, length);
            } else {
                print_result(ret);
            }
        } else if (strcmp(line, "r1") == 0 || strcmp(line, "r2") == 0) {
            long message_length = parse_hex(argument, message, sizeof(message));
            if (message_length < 0) {
                puts("err bad-hex");
                continue;
            }
            ret = line[1] == '1'
                ? mbedtls_ecjpake_read_round_one(&ctx, message, (size_t) message_length)
                : mbedtls_ecjpake_read_round_two(&ctx, message, (size_t) message_length);
            print_result(ret);
        } else if (strcmp(line, "secret") == 0) {
            ret = mbedtls_ecjpake_derive_secret(&ctx, message, sizeof(message), &length,
                                                mbedtls_ctr_drbg_random, &drbg);
            if (ret == 0) {
                print_ok_hex(message, length);
            } else {
                print_result(ret);
            }
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            puts("err bad-command");
        }
    }

    mbedtls_ecjpake_free(&ctx);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return 0;
}
