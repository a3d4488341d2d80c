// faultshim is a PKCS#11 module for tests: it forwards every call to the
// module named by FAULT_SHIM_TARGET and, while the file named by
// FAULT_SHIM_DOWN exists, answers the calls the keystore makes with
// CKR_DEVICE_REMOVED, like an HSM whose cable was pulled. Built by the hsm
// tests with gcc; not part of the product.
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
#include "pkcs11go.h"

static CK_FUNCTION_LIST real;
static CK_FUNCTION_LIST shim;
static int loaded;

static int down(void) {
	const char *flag = getenv("FAULT_SHIM_DOWN");
	return flag != NULL && access(flag, F_OK) == 0;
}

#define GUARD(name, params, args) \
	static CK_RV shim_##name params { \
		if (down()) return CKR_DEVICE_REMOVED; \
		return real.name args; \
	}

GUARD(C_Initialize, (CK_VOID_PTR a), (a))
GUARD(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c))
GUARD(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b))
GUARD(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d, CK_SESSION_HANDLE_PTR e), (a, b, c, d, e))
GUARD(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b))
// While FAULT_SHIM_PIN_LOCKED names an existing file, C_Login answers
// CKR_PIN_LOCKED, as a hardware token does after too many wrong PINs
// (SoftHSM itself never locks).
static CK_RV shim_C_Login(CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d) {
	const char *locked = getenv("FAULT_SHIM_PIN_LOCKED");
	if (down()) return CKR_DEVICE_REMOVED;
	if (locked != NULL && access(locked, F_OK) == 0) return CKR_PIN_LOCKED;
	return real.C_Login(a, b, c, d);
}
GUARD(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), (a, b, c))
GUARD(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d))
GUARD(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
GUARD(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
GUARD(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
GUARD(C_Decrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
GUARD(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
GUARD(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
GUARD(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
	if (!loaded) {
		const char *target = getenv("FAULT_SHIM_TARGET");
		if (target == NULL) return CKR_GENERAL_ERROR;
		void *h = dlopen(target, RTLD_NOW | RTLD_LOCAL);
		if (h == NULL) return CKR_GENERAL_ERROR;
		CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
		CK_FUNCTION_LIST_PTR list;
		if (get == NULL || get(&list) != CKR_OK) return CKR_GENERAL_ERROR;
		real = *list;
		shim = *list;
		shim.C_Initialize = shim_C_Initialize;
		shim.C_GetSlotList = shim_C_GetSlotList;
		shim.C_GetTokenInfo = shim_C_GetTokenInfo;
		shim.C_OpenSession = shim_C_OpenSession;
		shim.C_GetSessionInfo = shim_C_GetSessionInfo;
		shim.C_Login = shim_C_Login;
		shim.C_FindObjectsInit = shim_C_FindObjectsInit;
		shim.C_GetAttributeValue = shim_C_GetAttributeValue;
		shim.C_EncryptInit = shim_C_EncryptInit;
		shim.C_Encrypt = shim_C_Encrypt;
		shim.C_DecryptInit = shim_C_DecryptInit;
		shim.C_Decrypt = shim_C_Decrypt;
		shim.C_SignInit = shim_C_SignInit;
		shim.C_Sign = shim_C_Sign;
		shim.C_GenerateRandom = shim_C_GenerateRandom;
		loaded = 1;
	}
	*out = &shim;
	return CKR_OK;
}
