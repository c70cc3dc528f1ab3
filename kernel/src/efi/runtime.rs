//! Safe wrappers over the UEFI runtime services baton uses, after
//! SetVirtualAddressMap: every call runs in the EFI address space, where
//! the window maps the firmware (see `call`).

use core::fmt;

use handoff::efi::services::{self as rules, Service};
use uefi_raw::table::runtime::{ResetType, RuntimeServices, TimeCapabilities, VariableAttributes};
use uefi_raw::time::Time;
use uefi_raw::{Guid, Status};

use super::call;
use crate::kspace::AddressSpace;

/// A UEFI status code other than success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EfiStatus(pub Status);

impl fmt::Display for EfiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

fn check(status: Status) -> Result<(), EfiStatus> {
    if status.is_success() {
        Ok(())
    } else {
        Err(EfiStatus(status))
    }
}

/// Why GetVariable gave no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableError {
    /// The buffer is too small: the value has `needed` bytes.
    TooSmall {
        /// The value's size.
        needed: usize,
    },
    /// Any other status (`NOT_FOUND` for a variable that does not exist).
    Status(EfiStatus),
}

impl VariableError {
    /// Whether the variable does not exist.
    pub fn is_not_found(&self) -> bool {
        *self == VariableError::Status(EfiStatus(Status::NOT_FOUND))
    }
}

impl fmt::Display for VariableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VariableError::TooSmall { needed } => {
                write!(f, "BUFFER_TOO_SMALL: the value has {needed} bytes")
            }
            VariableError::Status(s) => write!(f, "{s}"),
        }
    }
}

/// The runtime services table: a copy of its function pointers (window
/// addresses, mapped in the EFI address space only), and where it is.
#[derive(Debug)]
pub struct Services {
    rt: RuntimeServices,
    table: u64,
    space: &'static AddressSpace,
}

// SAFETY: the copy is only read, and every call through it is serialised
// by `call::call`.
unsafe impl Send for Services {}
// SAFETY: as for `Send`: shared access only reads the copy, and calls are
// serialised.
unsafe impl Sync for Services {}

/// The most UCS-2 characters of a variable name, NUL included.
pub const NAME_LEN: usize = 128;

/// A variable name in UCS-2, NUL-terminated.
#[derive(Clone, Copy)]
pub struct Name {
    chars: [u16; NAME_LEN],
}

impl Name {
    /// `s` as UCS-2, or `None` when it is too long or leaves the BMP.
    pub fn new(s: &str) -> Option<Self> {
        let mut chars = [0u16; NAME_LEN];
        for (n, c) in s.encode_utf16().enumerate() {
            if n + 1 >= NAME_LEN || (0xd800..0xe000).contains(&c) {
                return None;
            }
            chars[n] = c;
        }
        Some(Self { chars })
    }

    fn empty() -> Self {
        Self {
            chars: [0; NAME_LEN],
        }
    }

    fn len(&self) -> usize {
        self.chars.iter().position(|&c| c == 0).unwrap_or(NAME_LEN)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in char::decode_utf16(self.chars[..self.len()].iter().copied()) {
            write!(f, "{}", c.unwrap_or(char::REPLACEMENT_CHARACTER))?;
        }
        Ok(())
    }
}

impl Services {
    /// The services of `rt`, a copy of the firmware's table (at window
    /// address `table`), called in `space`.
    ///
    /// # Safety
    ///
    /// `rt`'s function pointers must be the firmware's runtime services at
    /// their window addresses, mapped (with the code and data they use) in
    /// `space`.
    pub unsafe fn new(rt: RuntimeServices, table: u64, space: &'static AddressSpace) -> Self {
        Self { rt, table, space }
    }

    /// Where the table is (in the EFI window).
    pub fn table_address(&self) -> u64 {
        self.table
    }

    /// Where GetTime is (in the EFI window).
    pub fn get_time_address(&self) -> u64 {
        self.rt.get_time as usize as u64
    }

    /// Calls `service` through `f` in the EFI address space.
    fn call(&self, service: Service, f: impl FnOnce() -> Status) -> Status {
        call::call(service, self.space, f)
    }

    /// The current time.
    pub fn get_time(&self) -> Result<Time, EfiStatus> {
        let rt = &self.rt;
        let mut time = core::mem::MaybeUninit::<Time>::zeroed();
        let mut caps = core::mem::MaybeUninit::<TimeCapabilities>::zeroed();
        // SAFETY: GetTime writes a Time and capabilities into the buffers.
        let status = self.call(Service::GetTime, || unsafe {
            (rt.get_time)(time.as_mut_ptr(), caps.as_mut_ptr())
        });
        check(status)?;
        // SAFETY: zero-initialised and written by the firmware on success;
        // every bit pattern is a valid `Time` (plain integers).
        Ok(unsafe { time.assume_init() })
    }

    /// Reads variable `name` of `vendor` into `buf`: its attributes and
    /// length. A `buf` too small gives the length needed.
    pub fn get_variable(
        &self,
        name: &Name,
        vendor: &Guid,
        buf: &mut [u8],
    ) -> Result<(VariableAttributes, usize), VariableError> {
        let rt = &self.rt;
        let mut attrs = VariableAttributes::empty();
        let mut size = buf.len();
        // SAFETY: the name is NUL-terminated UCS-2, the buffer and size
        // describe writable memory of that size.
        let status = self.call(Service::GetVariable, || unsafe {
            (rt.get_variable)(
                name.chars.as_ptr(),
                vendor,
                &mut attrs,
                &mut size,
                buf.as_mut_ptr(),
            )
        });
        if status == Status::BUFFER_TOO_SMALL {
            return Err(VariableError::TooSmall { needed: size });
        }
        check(status).map_err(VariableError::Status)?;
        Ok((attrs, size))
    }

    /// Writes (or, with empty `data`, deletes) variable `name` of `vendor`.
    /// A write of non-volatile data that would leave less than 5 KiB of
    /// variable storage is refused with `EFI_OUT_OF_RESOURCES` before the
    /// firmware sees it (Linux's efi_query_variable_store).
    pub fn set_variable(
        &self,
        name: &Name,
        vendor: &Guid,
        attrs: VariableAttributes,
        data: &[u8],
    ) -> Result<(), EfiStatus> {
        if !data.is_empty() && attrs.contains(VariableAttributes::NON_VOLATILE) {
            self.check_store(attrs, data.len() as u64)?;
        }
        let rt = &self.rt;
        // SAFETY: the name is NUL-terminated UCS-2; data is readable.
        let status = self.call(Service::SetVariable, || unsafe {
            (rt.set_variable)(
                name.chars.as_ptr(),
                vendor,
                attrs,
                data.len(),
                data.as_ptr(),
            )
        });
        check(status)
    }

    /// Calls `visit` with every variable's name and vendor.
    pub fn for_each_variable(
        &self,
        mut visit: impl FnMut(&Name, &Guid),
    ) -> Result<usize, EfiStatus> {
        let rt = &self.rt;
        let mut name = Name::empty();
        let mut vendor = Guid::from_bytes([0; 16]);
        let mut count = 0;
        loop {
            let mut size = core::mem::size_of_val(&name.chars);
            // SAFETY: the buffer holds the previous name (NUL-terminated,
            // empty at first) and `size` bytes of room.
            let status = self.call(Service::GetNextVariableName, || unsafe {
                (rt.get_next_variable_name)(&mut size, name.chars.as_mut_ptr(), &mut vendor)
            });
            if status == Status::NOT_FOUND {
                return Ok(count);
            }
            check(status)?;
            count += 1;
            visit(&name, &vendor);
        }
    }

    /// Resets or powers off the machine; returns only if the firmware did
    /// not, with its status (`EFI_ABORTED` if it faulted).
    ///
    /// uefi-raw declares ResetSystem as never returning, but firmware can
    /// (Linux's efi_reboot allows for it): the call goes through a pointer
    /// type that may return, so that the caller can fall back.
    pub fn reset(&self, kind: ResetType) -> Status {
        type MayReturn = unsafe extern "efiapi" fn(ResetType, Status, usize, *const u8);
        // SAFETY: the same function with the same arguments and calling
        // convention; only the return type differs, and the firmware
        // returns nothing in RAX that the caller would read.
        let reset_system: MayReturn = unsafe { core::mem::transmute(self.rt.reset_system) };
        // SAFETY: ResetSystem with no reset data.
        self.call(Service::ResetSystem, || unsafe {
            reset_system(kind, Status::SUCCESS, 0, core::ptr::null());
            Status::SUCCESS
        })
    }

    /// The variable storage for `attrs`: `(maximum, remaining, largest
    /// variable)`, from QueryVariableInfo.
    pub fn query_variable_info(
        &self,
        attrs: VariableAttributes,
    ) -> Result<(u64, u64, u64), EfiStatus> {
        let rt = &self.rt;
        let (mut max, mut remaining, mut largest) = (0u64, 0u64, 0u64);
        // SAFETY: QueryVariableInfo writes three u64s.
        let status = self.call(Service::QueryVariableInfo, || unsafe {
            (rt.query_variable_info)(attrs, &mut max, &mut remaining, &mut largest)
        });
        check(status)?;
        Ok((max, remaining, largest))
    }

    /// Refuses a write of `size` bytes that would leave less than the
    /// reserve; lets it through when the firmware cannot tell.
    fn check_store(&self, attrs: VariableAttributes, size: u64) -> Result<(), EfiStatus> {
        match self.query_variable_info(attrs) {
            Ok((_, remaining, _)) if !rules::variable_store_allows(remaining, size) => {
                Err(EfiStatus(Status::OUT_OF_RESOURCES))
            }
            Ok(_) => Ok(()),
            // QueryVariableInfo unsupported: nothing to check against.
            Err(EfiStatus(Status::UNSUPPORTED)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
