/*
 * fib: the RabbitMQ RPC tutorial's server method, as a warren plugin built
 * out of tree from the installed SDK only:
 *
 *   cc -shared -fPIC -o fib.so fib.c $(pkg-config --cflags --libs warren-plugin)
 *
 * Method "fib": params [n], n an integer 0..90 -> the n-th Fibonacci number
 * (fib(0) = 0, fib(1) = 1, fib(30) = 832040; fib(90) still fits in a
 * json_int_t).  Anything else is an invalid-params error.
 */
#include <warren/plugin.h>

static int fib(const warren_call *call, json_t *params, json_t **result, warren_error *err)
{
    json_t *arg = json_array_get(params, 0);
    json_int_t n, a = 0, b = 1;

    (void)call;
    if (!json_is_array(params) || json_array_size(params) != 1 || !json_is_integer(arg))
        return warren_error_set(err, WARREN_ERR_INVALID_PARAMS, "expected [n], n an integer 0..90");
    n = json_integer_value(arg);
    if (n < 0 || n > 90)
        return warren_error_set(err, WARREN_ERR_INVALID_PARAMS, "n must be 0..90, not %lld",
                                (long long)n);
    while (n-- > 0) {
        json_int_t next = a + b;
        a = b;
        b = next;
    }
    *result = json_integer(a);
    return 0;
}

static const warren_method methods[] = {
    {"fib", fib, "the n-th Fibonacci number, n in 0..90"},
    {NULL, NULL, NULL},
};

WARREN_PLUGIN_DEFINE(.name = "fib", .version = "1.0", .methods = methods);
