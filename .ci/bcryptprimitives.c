/*
 * bcryptprimitives.dll for wine 8: Go 1.24 and later call ProcessPrng from
 * this DLL for their random numbers, and wine added the DLL only after 8.0.
 * This one exports ProcessPrng alone, on top of advapi32's RtlGenRandom
 * (SystemFunction036). .ci/wine.sh builds it and puts it in the private wine
 * prefix the Windows tests run in. Not for real Windows, which has its own.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
	while (size > 0) {
		ULONG n = size > 0x40000000 ? 0x40000000 : (ULONG)size;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		size -= n;
	}
	return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
	(void)instance;
	(void)reason;
	(void)reserved;
	return TRUE;
}
