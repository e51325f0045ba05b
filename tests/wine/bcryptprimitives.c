/* Wine 8.0 (Debian 12) has no bcryptprimitives.dll, from which Rust's standard library (1.78
 * and later) imports ProcessPrng for its random numbers; a Windows 10 machine has it. This
 * stand-in, installed into the test prefix only by scripts/test-windows, answers ProcessPrng
 * with RtlGenRandom (advapi32's SystemFunction036), Windows' older documented CSPRNG entry
 * point, which Wine implements. It is never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
