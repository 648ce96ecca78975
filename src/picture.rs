//! A picture handed from the decoder to the JPEG encoder, free of any libav type.

/// Borrowed full-range (JPEG) 4:2:0 planes; chroma planes are `ceil(w/2) x ceil(h/2)`.
#[derive(Debug, Clone, Copy)]
pub struct Yuv420<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub y_stride: usize,
    pub u_stride: usize,
    pub v_stride: usize,
}
