/* SAL 2 source annotations (sal.h). Windows' static analysers read them;
 * here every one expands to nothing, so annotated driver code compiles
 * unchanged. The legacy (SAL 1) double-underscore forms are defined for C
 * only: C++ standard library headers use some of those names themselves. */
#ifndef UWDF_SAL_H
#define UWDF_SAL_H

/* Parameters */
#define _In_
#define _In_opt_
#define _In_z_
#define _In_opt_z_
#define _In_reads_(s)
#define _In_reads_opt_(s)
#define _In_reads_bytes_(s)
#define _In_reads_bytes_opt_(s)
#define _In_reads_z_(s)
#define _In_reads_opt_z_(s)
#define _In_reads_or_z_(s)
#define _In_reads_to_ptr_(p)
#define _In_reads_to_ptr_opt_(p)
#define _In_range_(l, h)
#define _In_count_(s)
#define _In_bytecount_(s)
#define _In_defensive_(a)
#define _Out_
#define _Out_opt_
#define _Out_writes_(s)
#define _Out_writes_opt_(s)
#define _Out_writes_bytes_(s)
#define _Out_writes_bytes_opt_(s)
#define _Out_writes_z_(s)
#define _Out_writes_opt_z_(s)
#define _Out_writes_to_(s, c)
#define _Out_writes_to_opt_(s, c)
#define _Out_writes_bytes_to_(s, c)
#define _Out_writes_bytes_to_opt_(s, c)
#define _Out_writes_all_(s)
#define _Out_writes_all_opt_(s)
#define _Out_writes_bytes_all_(s)
#define _Out_writes_bytes_all_opt_(s)
#define _Out_range_(l, h)
#define _Out_z_cap_(s)
#define _Out_cap_(s)
#define _Out_bytecap_(s)
#define _Inout_
#define _Inout_opt_
#define _Inout_z_
#define _Inout_opt_z_
#define _Inout_updates_(s)
#define _Inout_updates_opt_(s)
#define _Inout_updates_z_(s)
#define _Inout_updates_opt_z_(s)
#define _Inout_updates_to_(s, c)
#define _Inout_updates_to_opt_(s, c)
#define _Inout_updates_all_(s)
#define _Inout_updates_all_opt_(s)
#define _Inout_updates_bytes_(s)
#define _Inout_updates_bytes_opt_(s)
#define _Inout_updates_bytes_to_(s, c)
#define _Inout_updates_bytes_all_(s)
#define _Outptr_
#define _Outptr_opt_
#define _Outptr_result_maybenull_
#define _Outptr_opt_result_maybenull_
#define _Outptr_result_z_
#define _Outptr_opt_result_z_
#define _Outptr_result_maybenull_z_
#define _Outptr_result_nullonfailure_
#define _Outptr_opt_result_nullonfailure_
#define _Outptr_result_buffer_(s)
#define _Outptr_opt_result_buffer_(s)
#define _Outptr_result_buffer_maybenull_(s)
#define _Outptr_result_bytebuffer_(s)
#define _Outptr_opt_result_bytebuffer_(s)
#define _Outptr_result_bytebuffer_maybenull_(s)
#define _Outptr_result_buffer_to_(s, c)
#define _Outptr_result_bytebuffer_to_(s, c)
#define _Outref_
#define _Outref_result_maybenull_
#define _COM_Outptr_
#define _COM_Outptr_opt_
#define _Deref_out_
#define _Deref_out_opt_
#define _Deref_opt_out_
#define _Deref_out_z_
#define _Deref_out_range_(l, h)
#define _Deref_in_range_(l, h)
#define _Deref_inout_range_(l, h)
#define _Deref_pre_z_
#define _Deref_post_z_
#define _Deref_post_null_
#define _Deref_post_maybenull_
#define _Deref_ret_z_
#define _Reserved_
#define _Const_
#define _Frees_ptr_
#define _Frees_ptr_opt_
#define _Interlocked_operand_

/* Return values */
#define _Ret_
#define _Ret_z_
#define _Ret_maybenull_
#define _Ret_maybenull_z_
#define _Ret_notnull_
#define _Ret_null_
#define _Ret_valid_
#define _Ret_range_(l, h)
#define _Ret_writes_(s)
#define _Ret_writes_z_(s)
#define _Ret_writes_bytes_(s)
#define _Ret_writes_maybenull_(s)
#define _Ret_writes_bytes_maybenull_(s)
#define _Ret_writes_to_(s, c)
#define _Ret_writes_bytes_to_(s, c)
#define _Check_return_
#define _Must_inspect_result_
#define _Success_(e)
#define _Return_type_success_(e)
#define _Result_nullonfailure_
#define _Result_zeroonfailure_
#define _Printf_format_string_
#define _Printf_format_string_params_(n)
#define _Scanf_format_string_
#define _Scanf_s_format_string_
#define _Format_string_impl_(k, n)

/* Pre/post conditions, fields and structures */
#define _Pre_
#define _Post_
#define _Pre_satisfies_(e)
#define _Post_satisfies_(e)
#define _Pre_notnull_
#define _Pre_maybenull_
#define _Pre_null_
#define _Pre_valid_
#define _Pre_opt_valid_
#define _Pre_invalid_
#define _Pre_z_
#define _Pre_readable_size_(s)
#define _Pre_writable_size_(s)
#define _Pre_readable_byte_size_(s)
#define _Pre_writable_byte_size_(s)
#define _Pre_equal_to_(e)
#define _Pre_defensive_
#define _Post_valid_
#define _Post_invalid_
#define _Post_null_
#define _Post_notnull_
#define _Post_maybenull_
#define _Post_z_
#define _Post_maybez_
#define _Post_readable_size_(s)
#define _Post_writable_size_(s)
#define _Post_readable_byte_size_(s)
#define _Post_writable_byte_size_(s)
#define _Post_equal_to_(e)
#define _Post_ptr_invalid_
#define _Post_defensive_
#define _When_(c, a)
#define _At_(t, a)
#define _At_buffer_(t, i, b, a)
#define _Group_(a)
#define _On_failure_(a)
#define _Always_(a)
#define _Satisfies_(e)
#define _Field_size_(s)
#define _Field_size_opt_(s)
#define _Field_size_bytes_(s)
#define _Field_size_bytes_opt_(s)
#define _Field_size_part_(s, c)
#define _Field_size_part_opt_(s, c)
#define _Field_size_bytes_part_(s, c)
#define _Field_size_bytes_part_opt_(s, c)
#define _Field_size_full_(s)
#define _Field_size_full_opt_(s)
#define _Field_size_bytes_full_(s)
#define _Field_size_bytes_full_opt_(s)
#define _Field_z_
#define _Field_range_(l, h)
#define _Struct_size_bytes_(s)
#define _Null_terminated_
#define _NullNull_terminated_
#define _Notnull_
#define _Maybenull_
#define _Null_
#define _Valid_
#define _Notvalid_
#define _Literal_
#define _Notliteral_
#define _Readable_bytes_(s)
#define _Writable_bytes_(s)
#define _Readable_elements_(s)
#define _Writable_elements_(s)
#define _Points_to_data_
#define _Unchanged_(e)
#define _Nullterm_length_(p)
#define _String_length_(p)
#define _Inexpressible_(e)
#define _Enum_is_bitflag_
#define _Strict_type_match_
#define _Use_decl_annotations_
#define _Check_return_opt_
#define _Pre_defensive_
#define _Out_defensive_(a)

/* Analysis helpers (statements: they expand to an empty statement) */
#define _Analysis_assume_(e)
#define _Analysis_assume_nullterminated_(p)
#define _Analysis_mode_(m)
#define _Analysis_noreturn_
#define _Analysis_assume_lock_acquired_(l)
#define _Analysis_assume_lock_released_(l)
#define _Analysis_assume_lock_held_(l)
#define _Analysis_assume_lock_not_held_(l)
#define _Analysis_assume_same_lock_(a, b)
#define _Analysis_suppress_lock_checking_(l)
#define _Analysis_assume_smart_lock_acquired_(l)
#define _Analysis_assume_smart_lock_released_(l)
#define __analysis_assume(e)
#define __analysis_assert(e)

/* Locks */
#define _Acquires_lock_(l)
#define _Releases_lock_(l)
#define _Requires_lock_held_(l)
#define _Requires_lock_not_held_(l)
#define _Requires_no_locks_held_
#define _Acquires_exclusive_lock_(l)
#define _Acquires_shared_lock_(l)
#define _Releases_exclusive_lock_(l)
#define _Releases_shared_lock_(l)
#define _Requires_exclusive_lock_held_(l)
#define _Requires_shared_lock_held_(l)
#define _Acquires_nonreentrant_lock_(l)
#define _Releases_nonreentrant_lock_(l)
#define _Post_same_lock_(a, b)
#define _Guarded_by_(l)
#define _Write_guarded_by_(l)
#define _Interlocked_
#define _Has_lock_kind_(k)
#define _Has_lock_level_(l)
#define _Lock_level_order_(a, b)
#define _Create_lock_level_(l)
#define _No_competing_thread_
#define _No_competing_thread_begin_
#define _No_competing_thread_end_
#define _Benign_race_begin_
#define _Benign_race_end_

#ifndef __cplusplus
/* SAL 1 (legacy) forms, still common in older driver code; those that
 * Linux or glibc headers use as identifiers (__reserved, __callback,
 * __override) are left out. */
#define __in
#define __in_opt
#define __in_z
#define __in_opt_z
#define __in_ecount(s)
#define __in_bcount(s)
#define __in_ecount_opt(s)
#define __in_bcount_opt(s)
#define __in_xcount(s)
#define __in_range(l, h)
#define __out
#define __out_opt
#define __out_z
#define __out_ecount(s)
#define __out_bcount(s)
#define __out_ecount_opt(s)
#define __out_bcount_opt(s)
#define __out_ecount_part(s, c)
#define __out_bcount_part(s, c)
#define __out_bcount_part_opt(s, c)
#define __out_ecount_full(s)
#define __out_bcount_full(s)
#define __out_xcount(s)
#define __inout
#define __inout_opt
#define __inout_z
#define __inout_ecount(s)
#define __inout_bcount(s)
#define __inout_ecount_opt(s)
#define __inout_bcount_opt(s)
#define __deref_out
#define __deref_out_opt
#define __deref_opt_out
#define __deref_out_ecount(s)
#define __deref_out_bcount(s)
#define __deref_inout
#define __deref_opt_out_opt
#define __field_ecount(s)
#define __field_bcount(s)
#define __field_ecount_opt(s)
#define __field_bcount_opt(s)
#define __field_bcount_part(s, c)
#define __ecount(s)
#define __bcount(s)
#define __nullterminated
#define __nullnullterminated
#define __checkReturn
#define __success(e)
#define __typefix(t)
#define __notnull
#define __maybenull
#define __range(l, h)
#define __format_string
#define __out_range(l, h)
#define __in_ecount_z(s)
#endif

#endif
