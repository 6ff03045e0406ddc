//! Hand-made Arrow C streams for the `arrow_import` fuzz target (see [`crate::fuzzing`]),
//! as the `raw` test fixture makes them: a plain description of a schema, its batches and
//! its errors becomes the C structs a plugin would hand over, and is imported the way a
//! read imports it.
//!
//! The description may lie about anything a consumer can check through the C interface:
//! lengths, offsets, null counts, buffer and child counts, null pointers, formats, names,
//! flags, offsets and views inside buffers, UTF-8, alignment. It cannot lie about what the
//! interface gives a consumer no way to check, the sizes of allocations: the decoder in
//! `crate::fuzzing` makes every buffer as long as the description implies, and this module
//! allocates exactly that. So a crash here is the host trusting something it could have
//! checked.

use std::collections::VecDeque;
use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr;

use plugboard_api::PluginError;
use plugboard_api::ffi::FfiArrowArrayStream;
use polars::prelude::DataFrame;

/// An `ArrowSchema` to hand over.
#[derive(Clone, Default)]
pub(crate) struct SchemaSpec {
    /// The format string, without its NUL (an interior NUL ends it, as in C).
    pub format: Vec<u8>,
    /// `None`: a null name pointer.
    pub name: Option<Vec<u8>>,
    /// Already in the C interface's binary encoding; `None`: a null pointer.
    pub metadata: Option<Vec<u8>>,
    pub flags: i64,
    pub children: Vec<SchemaSpec>,
    pub dictionary: Option<Box<SchemaSpec>>,
    /// A null `children` pointer even though `n_children` says otherwise.
    pub null_children: bool,
}

/// One buffer of an `ArrowArray`.
#[derive(Clone, Default)]
pub(crate) struct BufferSpec {
    /// `None`: a null pointer.
    pub bytes: Option<Vec<u8>>,
    /// Hand over a pointer one byte past a 64-byte boundary.
    pub misaligned: bool,
}

/// An `ArrowArray` to hand over.
#[derive(Debug, Clone, Default)]
pub(crate) struct ArraySpec {
    pub length: i64,
    pub null_count: i64,
    pub offset: i64,
    pub buffers: Vec<BufferSpec>,
    /// A null `buffers` pointer even though `n_buffers` says otherwise.
    pub null_buffers: bool,
    pub children: Vec<ArraySpec>,
    /// A null `children` pointer even though `n_children` says otherwise.
    pub null_children: bool,
    pub dictionary: Option<Box<ArraySpec>>,
}

/// Bytes as text with escapes, for `Debug`.
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

impl std::fmt::Debug for SchemaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("SchemaSpec");
        d.field("format", &shown(&self.format))
            .field("name", &self.name.as_deref().map(shown))
            .field("metadata", &self.metadata.as_deref().map(shown))
            .field("flags", &self.flags);
        if self.null_children {
            d.field("null_children", &true);
        }
        d.field("children", &self.children)
            .field("dictionary", &self.dictionary)
            .finish()
    }
}

impl std::fmt::Debug for BufferSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.bytes {
            None => f.write_str("null"),
            Some(b) => write!(
                f,
                "{} bytes{}: {}",
                b.len(),
                if self.misaligned { " (misaligned)" } else { "" },
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        }
    }
}

/// What one `get_next` call does.
#[derive(Debug, Clone, Default)]
pub(crate) enum Step {
    Batch(ArraySpec),
    /// The end of the stream: a released array.
    #[default]
    End,
    /// A non-zero status, with the message `get_last_error` returns (`None`: null).
    Fail(c_int, Option<Vec<u8>>),
}

/// A whole stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamSpec {
    /// `Err`: `get_schema` fails with this status and message.
    pub schema: Result<SchemaSpec, (c_int, Option<Vec<u8>>)>,
    pub steps: Vec<Step>,
    pub no_get_schema: bool,
    pub no_get_next: bool,
    pub no_get_last_error: bool,
    /// Hand over a stream whose `release` is already null.
    pub released: bool,
}

/// Imports the stream as a read does, whole or batch by batch (see
/// `loader::import_for_fuzzing`).
pub(crate) fn import(spec: StreamSpec, by_batch: bool) -> Result<Vec<DataFrame>, PluginError> {
    super::loader::import_for_fuzzing(stream(spec), by_batch)
}

#[repr(C)]
struct CSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut CSchema,
    dictionary: *mut CSchema,
    release: Option<unsafe extern "C" fn(*mut CSchema)>,
    private_data: *mut c_void,
}

#[repr(C)]
struct CArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut CArray,
    dictionary: *mut CArray,
    release: Option<unsafe extern "C" fn(*mut CArray)>,
    private_data: *mut c_void,
}

impl CArray {
    /// A released array: the end of a stream.
    fn released() -> Self {
        Self {
            length: 0,
            null_count: 0,
            offset: 0,
            n_buffers: 0,
            n_children: 0,
            buffers: ptr::null_mut(),
            children: ptr::null_mut(),
            dictionary: ptr::null_mut(),
            release: None,
            private_data: ptr::null_mut(),
        }
    }
}

/// Memory with 64-byte alignment (as the C interface recommends), exactly `len` bytes
/// usable from the pointer handed over.
struct Aligned {
    ptr: *mut u8,
    layout: std::alloc::Layout,
    shift: usize,
}

impl Aligned {
    fn new(bytes: &[u8], misaligned: bool) -> Option<Self> {
        let shift = usize::from(misaligned);
        let layout = std::alloc::Layout::from_size_align(bytes.len() + shift + 1, 64).ok()?;
        // SAFETY: the layout's size is non-zero.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` holds `len + shift + 1` bytes; the copy fills `len` after `shift`.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.add(shift), bytes.len()) };
        Some(Self { ptr, layout, shift })
    }

    fn as_ptr(&self) -> *const c_void {
        // SAFETY: within the allocation (see `new`).
        unsafe { self.ptr.add(self.shift).cast() }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// What a schema's `private_data` owns.
struct SchemaOwned {
    format: CString,
    name: Option<CString>,
    metadata: Option<Vec<u8>>,
    children: Vec<*mut CSchema>,
    _children_list: Vec<*mut CSchema>,
    dictionary: *mut CSchema,
}

fn c_string(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap_or_default()
}

fn schema(spec: &SchemaSpec) -> CSchema {
    let format = c_string(&spec.format);
    let name = spec.name.as_deref().map(c_string);
    let metadata = spec.metadata.clone();
    let children: Vec<*mut CSchema> = spec
        .children
        .iter()
        .map(|c| Box::into_raw(Box::new(schema(c))))
        .collect();
    let mut children_list = children.clone();
    let dictionary = spec
        .dictionary
        .as_deref()
        .map_or(ptr::null_mut(), |d| Box::into_raw(Box::new(schema(d))));
    let children_ptr = if spec.null_children || children_list.is_empty() {
        ptr::null_mut()
    } else {
        children_list.as_mut_ptr()
    };
    let owned = Box::new(SchemaOwned {
        format,
        name,
        metadata,
        children,
        _children_list: children_list,
        dictionary,
    });
    CSchema {
        format: owned.format.as_ptr(),
        name: owned.name.as_ref().map_or(ptr::null(), |n| n.as_ptr()),
        metadata: owned
            .metadata
            .as_ref()
            .map_or(ptr::null(), |m| m.as_ptr().cast()),
        flags: spec.flags,
        n_children: spec.children.len() as i64,
        children: children_ptr,
        dictionary: owned.dictionary,
        release: Some(release_schema),
        private_data: Box::into_raw(owned).cast(),
    }
}

unsafe extern "C" fn release_schema(schema: *mut CSchema) {
    // SAFETY: the consumer calls this once on a live schema made by `schema` above.
    unsafe {
        let owned = Box::from_raw((*schema).private_data.cast::<SchemaOwned>());
        for &child in owned.children.iter().chain([&owned.dictionary]) {
            if child.is_null() {
                continue;
            }
            if let Some(release) = (*child).release {
                release(child);
            }
            drop(Box::from_raw(child));
        }
        (*schema).release = None;
    }
}

/// What an array's `private_data` owns.
struct ArrayOwned {
    _buffers: Vec<Option<Aligned>>,
    _buffer_list: Vec<*const c_void>,
    children: Vec<*mut CArray>,
    _children_list: Vec<*mut CArray>,
    dictionary: *mut CArray,
}

fn array(spec: &ArraySpec) -> CArray {
    let buffers: Vec<Option<Aligned>> = spec
        .buffers
        .iter()
        .map(|b| {
            b.bytes
                .as_deref()
                .and_then(|x| Aligned::new(x, b.misaligned))
        })
        .collect();
    let mut buffer_list: Vec<*const c_void> = buffers
        .iter()
        .map(|b| b.as_ref().map_or(ptr::null(), Aligned::as_ptr))
        .collect();
    let children: Vec<*mut CArray> = spec
        .children
        .iter()
        .map(|c| Box::into_raw(Box::new(array(c))))
        .collect();
    let mut children_list = children.clone();
    let dictionary = spec
        .dictionary
        .as_deref()
        .map_or(ptr::null_mut(), |d| Box::into_raw(Box::new(array(d))));
    let buffers_ptr = if spec.null_buffers || buffer_list.is_empty() {
        ptr::null_mut()
    } else {
        buffer_list.as_mut_ptr()
    };
    let children_ptr = if spec.null_children || children_list.is_empty() {
        ptr::null_mut()
    } else {
        children_list.as_mut_ptr()
    };
    let owned = Box::new(ArrayOwned {
        _buffers: buffers,
        _buffer_list: buffer_list,
        children,
        _children_list: children_list,
        dictionary,
    });
    CArray {
        length: spec.length,
        null_count: spec.null_count,
        offset: spec.offset,
        n_buffers: spec.buffers.len() as i64,
        n_children: spec.children.len() as i64,
        buffers: buffers_ptr,
        children: children_ptr,
        dictionary: owned.dictionary,
        release: Some(release_array),
        private_data: Box::into_raw(owned).cast(),
    }
}

unsafe extern "C" fn release_array(array: *mut CArray) {
    // SAFETY: the consumer calls this once on a live array made by `array` above.
    unsafe {
        let owned = Box::from_raw((*array).private_data.cast::<ArrayOwned>());
        for &child in owned.children.iter().chain([&owned.dictionary]) {
            if child.is_null() {
                continue;
            }
            if let Some(release) = (*child).release {
                release(child);
            }
            drop(Box::from_raw(child));
        }
        (*array).release = None;
    }
}

/// What a stream's `private_data` owns.
struct StreamOwned {
    schema: Result<SchemaSpec, (c_int, Option<Vec<u8>>)>,
    steps: VecDeque<Step>,
    error: Option<CString>,
}

fn stream(spec: StreamSpec) -> FfiArrowArrayStream {
    let owned = Box::new(StreamOwned {
        schema: spec.schema,
        steps: spec.steps.into(),
        error: None,
    });
    let private_data: *mut c_void = Box::into_raw(owned).cast();
    let mut stream = FfiArrowArrayStream {
        get_schema: (!spec.no_get_schema).then_some(get_schema as _),
        get_next: (!spec.no_get_next).then_some(get_next as _),
        get_last_error: (!spec.no_get_last_error).then_some(get_last_error as _),
        release: Some(release_stream),
        private_data,
    };
    if spec.released {
        // SAFETY: releasing the stream just made, once; its `Drop` then does nothing.
        unsafe { release_stream(&mut stream) };
    }
    stream
}

/// # Safety
/// `stream` is a live stream made by [`stream`].
unsafe fn owned<'a>(stream: *mut FfiArrowArrayStream) -> &'a mut StreamOwned {
    // SAFETY: caller's promise; the consumer does not call callbacks concurrently.
    unsafe { &mut *(*stream).private_data.cast::<StreamOwned>() }
}

unsafe extern "C" fn get_schema(stream: *mut FfiArrowArrayStream, out: *mut c_void) -> c_int {
    // SAFETY: the consumer passes its live stream.
    let owned = unsafe { owned(stream) };
    match &owned.schema {
        Ok(spec) => {
            // SAFETY: `out` is the consumer's writable `ArrowSchema`, which `CSchema` mirrors.
            unsafe { ptr::write(out.cast::<CSchema>(), schema(spec)) };
            0
        }
        Err((status, message)) => {
            owned.error = message.as_deref().map(c_string);
            *status
        }
    }
}

unsafe extern "C" fn get_next(stream: *mut FfiArrowArrayStream, out: *mut c_void) -> c_int {
    // SAFETY: the consumer passes its live stream.
    let owned = unsafe { owned(stream) };
    let next = match owned.steps.pop_front().unwrap_or_default() {
        Step::Batch(spec) => array(&spec),
        Step::End => CArray::released(),
        Step::Fail(status, message) => {
            owned.error = message.as_deref().map(c_string);
            return status;
        }
    };
    // SAFETY: `out` is the consumer's writable `ArrowArray`, which `CArray` mirrors.
    unsafe { ptr::write(out.cast::<CArray>(), next) };
    0
}

unsafe extern "C" fn get_last_error(stream: *mut FfiArrowArrayStream) -> *const c_char {
    // SAFETY: the consumer passes its live stream.
    let owned = unsafe { owned(stream) };
    owned.error.as_ref().map_or(ptr::null(), |e| e.as_ptr())
}

unsafe extern "C" fn release_stream(stream: *mut FfiArrowArrayStream) {
    // SAFETY: called once on a live stream made by `stream`.
    unsafe {
        drop(Box::from_raw((*stream).private_data.cast::<StreamOwned>()));
        (*stream).release = None;
        (*stream).private_data = ptr::null_mut();
    }
}
