//! The shipped module's allocator: power-of-two size classes, each with a
//! free list, carved from pages the module grows its memory by.
//!
//! The tracker's allocations are small strings and vectors that come and go
//! in the same few sizes (events, batches, cookies), which size classes
//! reuse well. Blocks are never split or merged, so at most half of a block
//! is slack; in exchange the whole allocator is a few hundred bytes of wasm,
//! where a general-purpose one costs kilobytes.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr::{self, null_mut};

/// Bytes in a wasm memory page.
const PAGE_BYTES: usize = 64 * 1024;
/// The smallest block is 16 bytes; every block is 16-byte aligned.
const MIN_SHIFT: u32 = 4;
/// Size classes from 16 bytes to 2 GiB.
const CLASSES: usize = 28;

struct State {
    /// Head of each class's free list (0: empty); a free block holds the
    /// address of the next one in its first word.
    free: [usize; CLASSES],
    /// The unused part of the pages grown last.
    next: usize,
    end: usize,
}

struct Heap(UnsafeCell<State>);

// SAFETY: the module runs on one thread (no atomics feature).
unsafe impl Sync for Heap {}

#[global_allocator]
static HEAP: Heap = Heap(UnsafeCell::new(State {
    free: [0; CLASSES],
    next: 0,
    end: 0,
}));

/// The class of a layout, or `None` when it is too large or needs more than
/// 16-byte alignment (nothing in this crate does).
fn class(layout: Layout) -> Option<usize> {
    if layout.align() > 1 << MIN_SHIFT {
        return None;
    }
    let size = layout.size().max(1 << MIN_SHIFT);
    // Rounded up to a power of two: 2^bits >= size.
    let bits = usize::BITS - (size - 1).leading_zeros();
    let class = (bits - MIN_SHIFT) as usize;
    (class < CLASSES).then_some(class)
}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else { return null_mut() };
        // SAFETY: single thread, and no allocator call re-enters another.
        let state = unsafe { &mut *self.0.get() };
        let Some(list) = state.free.get_mut(class) else {
            return null_mut();
        };
        if *list != 0 {
            let head = *list;
            // SAFETY: `head` is a free block of this class; its first word
            // was written by `dealloc`.
            *list = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = 1usize << (class as u32 + MIN_SHIFT);
        if state.end - state.next < size {
            let pages = size.div_ceil(PAGE_BYTES);
            let before = wasm32::memory_grow(0, pages);
            if before == usize::MAX {
                return null_mut();
            }
            let start = before * PAGE_BYTES;
            // New pages follow the old end unless something else grew the
            // memory in between; then the old remainder is given up.
            if start != state.end {
                state.next = start;
            }
            state.end = start + pages * PAGE_BYTES;
        }
        let block = state.next;
        state.next += size;
        block as *mut u8
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if let Some(class) = class(layout) {
            // SAFETY: as in `alloc`; the block is ours and now unused.
            let state = unsafe { &mut *self.0.get() };
            if let Some(list) = state.free.get_mut(class) {
                unsafe { *(block as *mut usize) = *list };
                *list = block as usize;
            }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for the new size.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if class(new_layout) == class(layout) {
            return block;
        }
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
        }
        moved
    }
}
