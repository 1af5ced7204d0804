/* GSSAPI stand-ins for the static build only (GAME_STATIC, cmake/Static.cmake).
 *
 * Debian's libssh.a is built with GSSAPI support, so its gssapi.o refers to the gss_* functions
 * and two OID constants below, but Debian ships no static GSSAPI (MIT Kerberos) library. The
 * client never authenticates with GSSAPI: it sets SSH_OPTIONS_GSSAPI_AUTH off and only ever
 * calls ssh_userauth_publickey(), so libssh never reaches these functions. They exist to satisfy
 * the linker, and if anything did call them they behave like a GSSAPI library with no mechanism
 * available: every output is set to its empty value and every function returns GSS_S_FAILURE
 * (minor status 0), so no GSSAPI exchange can ever start, let alone succeed.
 *
 * The list is exactly what `nm -u libssh.a` names; a libssh that needs one more makes the static
 * link fail with an undefined reference (never a silent misbehaviour). The prototypes come from
 * the real <gssapi/gssapi.h> (Debian: libkrb5-dev), so the compiler checks every signature.
 * See docs/static-build.md. */
#include <gssapi/gssapi.h>
#include <stddef.h>

/* RFC 2744 name types: 1.2.840.113554.1.2.1.4 (host-based service), 1.2.840.113554.1.2.1.1 (user). */
static gss_OID_desc hostbased_service_oid = {10, (void*)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"};
static gss_OID_desc user_name_oid = {10, (void*)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x01"};
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &hostbased_service_oid;
gss_OID GSS_C_NT_USER_NAME = &user_name_oid;

#define UNUSED(x) (void)(x)

static OM_uint32 unavailable(OM_uint32* minor_status) {
  if (minor_status != NULL) *minor_status = 0;
  return GSS_S_FAILURE;
}

static void clear_buffer(gss_buffer_t buffer) {
  if (buffer != GSS_C_NO_BUFFER) {
    buffer->length = 0;
    buffer->value = NULL;
  }
}

OM_uint32 gss_accept_sec_context(OM_uint32* minor_status, gss_ctx_id_t* context_handle,
                                 gss_cred_id_t acceptor_cred_handle, gss_buffer_t input_token_buffer,
                                 gss_channel_bindings_t input_chan_bindings, gss_name_t* src_name,
                                 gss_OID* mech_type, gss_buffer_t output_token, OM_uint32* ret_flags,
                                 OM_uint32* time_rec, gss_cred_id_t* delegated_cred_handle) {
  UNUSED(context_handle);
  UNUSED(acceptor_cred_handle);
  UNUSED(input_token_buffer);
  UNUSED(input_chan_bindings);
  if (src_name != NULL) *src_name = GSS_C_NO_NAME;
  if (mech_type != NULL) *mech_type = GSS_C_NO_OID;
  clear_buffer(output_token);
  if (ret_flags != NULL) *ret_flags = 0;
  if (time_rec != NULL) *time_rec = 0;
  if (delegated_cred_handle != NULL) *delegated_cred_handle = GSS_C_NO_CREDENTIAL;
  return unavailable(minor_status);
}

OM_uint32 gss_acquire_cred(OM_uint32* minor_status, gss_name_t desired_name, OM_uint32 time_req,
                           gss_OID_set desired_mechs, gss_cred_usage_t cred_usage,
                           gss_cred_id_t* output_cred_handle, gss_OID_set* actual_mechs,
                           OM_uint32* time_rec) {
  UNUSED(desired_name);
  UNUSED(time_req);
  UNUSED(desired_mechs);
  UNUSED(cred_usage);
  if (output_cred_handle != NULL) *output_cred_handle = GSS_C_NO_CREDENTIAL;
  if (actual_mechs != NULL) *actual_mechs = GSS_C_NO_OID_SET;
  if (time_rec != NULL) *time_rec = 0;
  return unavailable(minor_status);
}

OM_uint32 gss_add_oid_set_member(OM_uint32* minor_status, gss_OID member_oid, gss_OID_set* oid_set) {
  UNUSED(member_oid);
  UNUSED(oid_set);
  return unavailable(minor_status);
}

OM_uint32 gss_create_empty_oid_set(OM_uint32* minor_status, gss_OID_set* oid_set) {
  if (oid_set != NULL) *oid_set = GSS_C_NO_OID_SET;
  return unavailable(minor_status);
}

OM_uint32 gss_display_name(OM_uint32* minor_status, gss_name_t input_name, gss_buffer_t output_name_buffer,
                           gss_OID* output_name_type) {
  UNUSED(input_name);
  clear_buffer(output_name_buffer);
  if (output_name_type != NULL) *output_name_type = GSS_C_NO_OID;
  return unavailable(minor_status);
}

OM_uint32 gss_display_status(OM_uint32* minor_status, OM_uint32 status_value, int status_type,
                             gss_OID mech_type, OM_uint32* message_context, gss_buffer_t status_string) {
  UNUSED(status_value);
  UNUSED(status_type);
  UNUSED(mech_type);
  if (message_context != NULL) *message_context = 0;  // no further messages: ends callers' loops
  clear_buffer(status_string);
  return unavailable(minor_status);
}

OM_uint32 gss_get_mic(OM_uint32* minor_status, gss_ctx_id_t context_handle, gss_qop_t qop_req,
                      gss_buffer_t message_buffer, gss_buffer_t message_token) {
  UNUSED(context_handle);
  UNUSED(qop_req);
  UNUSED(message_buffer);
  clear_buffer(message_token);
  return unavailable(minor_status);
}

OM_uint32 gss_import_name(OM_uint32* minor_status, gss_buffer_t input_name_buffer, gss_OID input_name_type,
                          gss_name_t* output_name) {
  UNUSED(input_name_buffer);
  UNUSED(input_name_type);
  if (output_name != NULL) *output_name = GSS_C_NO_NAME;
  return unavailable(minor_status);
}

OM_uint32 gss_indicate_mechs(OM_uint32* minor_status, gss_OID_set* mech_set) {
  if (mech_set != NULL) *mech_set = GSS_C_NO_OID_SET;
  return unavailable(minor_status);
}

OM_uint32 gss_init_sec_context(OM_uint32* minor_status, gss_cred_id_t claimant_cred_handle,
                               gss_ctx_id_t* context_handle, gss_name_t target_name, gss_OID mech_type,
                               OM_uint32 req_flags, OM_uint32 time_req,
                               gss_channel_bindings_t input_chan_bindings, gss_buffer_t input_token,
                               gss_OID* actual_mech_type, gss_buffer_t output_token, OM_uint32* ret_flags,
                               OM_uint32* time_rec) {
  UNUSED(claimant_cred_handle);
  UNUSED(context_handle);
  UNUSED(target_name);
  UNUSED(mech_type);
  UNUSED(req_flags);
  UNUSED(time_req);
  UNUSED(input_chan_bindings);
  UNUSED(input_token);
  if (actual_mech_type != NULL) *actual_mech_type = GSS_C_NO_OID;
  clear_buffer(output_token);
  if (ret_flags != NULL) *ret_flags = 0;
  if (time_rec != NULL) *time_rec = 0;
  return unavailable(minor_status);
}

OM_uint32 gss_inquire_cred(OM_uint32* minor_status, gss_cred_id_t cred_handle, gss_name_t* name,
                           OM_uint32* lifetime, gss_cred_usage_t* cred_usage, gss_OID_set* mechanisms) {
  UNUSED(cred_handle);
  if (name != NULL) *name = GSS_C_NO_NAME;
  if (lifetime != NULL) *lifetime = 0;
  if (cred_usage != NULL) *cred_usage = 0;
  if (mechanisms != NULL) *mechanisms = GSS_C_NO_OID_SET;
  return unavailable(minor_status);
}

OM_uint32 gss_inquire_cred_by_mech(OM_uint32* minor_status, gss_cred_id_t cred_handle, gss_OID mech_type,
                                   gss_name_t* name, OM_uint32* initiator_lifetime,
                                   OM_uint32* acceptor_lifetime, gss_cred_usage_t* cred_usage) {
  UNUSED(cred_handle);
  UNUSED(mech_type);
  if (name != NULL) *name = GSS_C_NO_NAME;
  if (initiator_lifetime != NULL) *initiator_lifetime = 0;
  if (acceptor_lifetime != NULL) *acceptor_lifetime = 0;
  if (cred_usage != NULL) *cred_usage = 0;
  return unavailable(minor_status);
}

/* Nothing is ever allocated above, so there is never anything to release: the handles are only
 * reset to their empty values (and, like everything here, the call reports failure). */
OM_uint32 gss_release_buffer(OM_uint32* minor_status, gss_buffer_t buffer) {
  clear_buffer(buffer);
  return unavailable(minor_status);
}

OM_uint32 gss_release_cred(OM_uint32* minor_status, gss_cred_id_t* cred_handle) {
  if (cred_handle != NULL) *cred_handle = GSS_C_NO_CREDENTIAL;
  return unavailable(minor_status);
}

OM_uint32 gss_release_name(OM_uint32* minor_status, gss_name_t* input_name) {
  if (input_name != NULL) *input_name = GSS_C_NO_NAME;
  return unavailable(minor_status);
}

OM_uint32 gss_release_oid_set(OM_uint32* minor_status, gss_OID_set* set) {
  if (set != NULL) *set = GSS_C_NO_OID_SET;
  return unavailable(minor_status);
}

OM_uint32 gss_test_oid_set_member(OM_uint32* minor_status, gss_OID member, gss_OID_set set, int* present) {
  UNUSED(member);
  UNUSED(set);
  if (present != NULL) *present = 0;
  return unavailable(minor_status);
}

OM_uint32 gss_verify_mic(OM_uint32* minor_status, gss_ctx_id_t context_handle, gss_buffer_t message_buffer,
                         gss_buffer_t message_token, gss_qop_t* qop_state) {
  UNUSED(context_handle);
  UNUSED(message_buffer);
  UNUSED(message_token);
  if (qop_state != NULL) *qop_state = 0;
  return unavailable(minor_status);
}
