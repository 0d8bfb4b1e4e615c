// TorchSharp Scalars that the library passes to libtorch, created once and kept for the life of the process (issue 17).
// A Scalar made by an implicit conversion (`t.add_(g, alpha: 0.5)`, `t * 2.0`, and TorchSharp's own `a + b`, which
// passes alpha = 1 that way) is unreachable as soon as its handle goes to native code, so a garbage collection on another
// thread (the data loader's prefetch thread, Parallel.For workers) can run its finaliser while libtorch is still reading
// it: training and detection died at random steps with "Expected false to be true" or "Unknown scalar type". Constants
// live here (static, never finalised); values known only at run time are created with `using var s = x.ToScalar();`
// for the call. tests/RetinaSharp.Tests/Foundation/ScalarLifetimeTests.cs keeps src/ free of the implicit forms.
using TorchSharp;

namespace RetinaSharp;

/// <summary>Process-lifetime Scalar constants (integral ones for integer tensors, floating ones for float tensors).</summary>
internal static class TorchScalars
{
    /// <summary>Integral 0.</summary>
    public static readonly Scalar Zero = 0.ToScalar();
    /// <summary>Integral 1 (also the alpha of a plain a + b).</summary>
    public static readonly Scalar One = 1.ToScalar();
    /// <summary>Integral 2.</summary>
    public static readonly Scalar Two = 2.ToScalar();
    /// <summary>Integral -1 (background in matched indices).</summary>
    public static readonly Scalar MinusOne = (-1).ToScalar();
    /// <summary>Integral -2 (ignored in matched indices).</summary>
    public static readonly Scalar MinusTwo = (-2).ToScalar();
    /// <summary>Floating 0.0.</summary>
    public static readonly Scalar ZeroF = 0.0.ToScalar();
    /// <summary>Floating 1.0.</summary>
    public static readonly Scalar OneF = 1.0.ToScalar();
    /// <summary>Floating 0.5.</summary>
    public static readonly Scalar OneHalf = 0.5.ToScalar();
    /// <summary>Floating -infinity.</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();
}
