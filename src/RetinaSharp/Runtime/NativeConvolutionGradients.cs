// The fast half of the convolution backward of issue 18 on CPUs that report no cache sizes. There oneDNN's 1x1 and
// strided backward kernels crash or return NaN, so Runtime/ConvolutionBackward.cs computes gradients from forward
// kernels; for 3x3 stride-1 convolutions with channel counts that are multiples of 16, oneDNN's own NCHW backward kernels
// (jit:avx512_core backward_data and backward_weights, the family of the forward kernels that are exact there) return the
// float64 values (ConvolutionBackwardTests) and compute dL/dW directly, where the forward-kernel route convolves x^T by
// (dL/dy)^T with the batch as channels (2.6x the time of the same-FLOP forward for a head convolution at P3).
// TorchSharp 0.107 binds no convolution backward, so this calls libtorch's
//   at::compositeexplicitautograd::convolution_backward_out(Tensor& dx, Tensor& dw, Tensor& db, const Tensor& dy,
//       const Tensor& x, const Tensor& w, OptionalArrayRef<long> bias_sizes, ArrayRef<long> stride, ArrayRef<long> padding,
//       ArrayRef<long> dilation, bool transposed, ArrayRef<long> output_padding, long groups, std::array<bool, 3> mask)
// through its exported symbol (Itanium C++ ABI, System V x86-64 calling convention: ArrayRef is {pointer, length} in two
// registers; OptionalArrayRef wraps std::optional<ArrayRef>, 24 bytes, passed in memory; the returned tuple of three
// references comes back through a hidden pointer). All three outputs are requested (the out variant copies every result
// into its output, so none may be left undefined). TorchSharp tensor handles are at::Tensor pointers, as the
// references want.
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Runtime;

/// <summary>oneDNN's native gradients of a 3x3 stride-1 convolution, where they are exact on CPUs without cache sizes.</summary>
internal static unsafe class NativeConvolutionGradients
{
    private const string Symbol =
        "_ZN2at25compositeexplicitautograd24convolution_backward_outERNS_6TensorES2_S2_RKS1_S4_S4_N3c1016OptionalArrayRefIlEENS5_8ArrayRefIlEES9_S9_bS9_lSt5arrayIbLm3EE";

    /// <summary>Environment variable that turns this path off (<c>0</c>): every gradient then comes from forward kernels.</summary>
    public const string Variable = "RETINA_NATIVE_CONV_GRAD";

    [StructLayout(LayoutKind.Sequential)]
    private struct LongArrayRef { public long* Data; public nint Length; }

    [StructLayout(LayoutKind.Sequential, Size = 24)]
    private struct OptionalLongArrayRef { public long* Data; public nint Length; public byte HasValue; }

    [StructLayout(LayoutKind.Sequential)]
    private struct OutputMask { public byte Input, Weight, Bias; }

    [StructLayout(LayoutKind.Sequential)]
    private struct ThreeReferences { public IntPtr A, B, C; }

    private static readonly Lazy<IntPtr> Function = new(Bind);

    private static IntPtr Bind()
    {
        if (Environment.GetEnvironmentVariable(Variable) == "0") return IntPtr.Zero;
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(NativeConvolutionGradients).Assembly, null, out var lib)
            && !NativeLibrary.TryLoad("libtorch_cpu.so", out lib))
            return IntPtr.Zero;
        return NativeLibrary.TryGetExport(lib, Symbol, out var f) ? f : IntPtr.Zero;
    }

    /// <summary>True when this path computes the gradients of a convolution of <paramref name="x"/> (N, C, H, W) by
    /// <paramref name="w"/> (O, C, 3, 3) at stride 1: both gradients wanted, C and O multiples of 16, every side of the input
    /// at least <paramref name="minSide"/>, float32 on the CPU, and the libtorch function found.</summary>
    public static bool Covers(Tensor x, Tensor w, ConvGeometry g, long minSide) =>
        g.InputGrad && g.WeightGrad && g.StrideH == 1 && g.StrideW == 1
        && w.shape[2] == 3 && w.shape[3] == 3 && g.PadH <= 2 && g.PadW <= 2
        && w.shape[0] % 16 == 0 && w.shape[1] % 16 == 0
        && Math.Min(x.shape[2], x.shape[3]) >= minSide
        && x.dtype == ScalarType.Float32 && w.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU
        && Function.Value != IntPtr.Zero;

    /// <summary>dL/dx (N, C, H, W), dL/dW (O, C, 3, 3) and dL/db (O) for upstream <paramref name="dy"/> (N, O, H_out, W_out),
    /// by libtorch's convolution backward (oneDNN where it is on: call inside a region that turns it on).</summary>
    public static (Tensor Input, Tensor Weight, Tensor Bias) Compute(Tensor x, Tensor w, Tensor dy, ConvGeometry g)
    {
        using var xc = x.contiguous();
        using var wc = w.contiguous();
        using var dyc = dy.contiguous();
        var dx = empty_like(xc);
        var dw = empty_like(wc);
        var db = empty(w.shape[0], dtype: w.dtype, device: w.device);
        long* biasSizes = stackalloc long[1] { w.shape[0] };
        long* stride = stackalloc long[2] { 1, 1 };
        long* padding = stackalloc long[2] { g.PadH, g.PadW };
        long* dilation = stackalloc long[2] { 1, 1 };
        long* outputPadding = stackalloc long[2] { 0, 0 };
        var f = (delegate* unmanaged<IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, OptionalLongArrayRef, LongArrayRef, LongArrayRef,
            LongArrayRef, byte, LongArrayRef, long, OutputMask, ThreeReferences>)Function.Value;
        f(dx.Handle, dw.Handle, db.Handle, dyc.Handle, xc.Handle, wc.Handle,
            new OptionalLongArrayRef { Data = biasSizes, Length = 1, HasValue = 1 },
            new LongArrayRef { Data = stride, Length = 2 }, new LongArrayRef { Data = padding, Length = 2 },
            new LongArrayRef { Data = dilation, Length = 2 }, 0, new LongArrayRef { Data = outputPadding, Length = 2 }, 1,
            new OutputMask { Input = 1, Weight = 1, Bias = 1 });
        GC.KeepAlive(xc); GC.KeepAlive(wc); GC.KeepAlive(dyc);
        return (dx, dw, db);
    }
}
