// Reference: ONNX operator sets (docs/Operators.md, docs/Versioning.md): opset 11 is the first with Resize's
// pytorch_half_pixel mode, Range and ScatterElements; 17 is the newest that Debian's python3-onnx 1.12 checks.
using RetinaSharp.Data;
using RetinaSharp.Quantization;

namespace RetinaSharp.Export;

/// <summary>Settings of <see cref="OnnxExporter"/>: opset, fixed or dynamic input size, class names, extra outputs.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The oldest default-domain opset the exporter writes (11: Resize with pytorch_half_pixel, Range).</summary>
    public const int MinOpset = 11;
    /// <summary>The newest default-domain opset the exporter writes (17, the newest python3-onnx 1.12 validates).</summary>
    public const int MaxOpset = 17;

    /// <summary>The default-domain opset, <see cref="MinOpset"/>..<see cref="MaxOpset"/>. Default 17.</summary>
    public int Opset { get; init; } = 17;

    /// <summary>
    /// The input image size (height, width) in pixels the graph is built for: the resize, padding, anchors and the
    /// map back to input pixels become constants. Null (the default) for a dynamic graph whose image height and
    /// width are symbolic ("height", "width") and whose sizes and anchors are computed in the graph.
    /// </summary>
    public (int Height, int Width)? FixedSize { get; init; }

    /// <summary>One category (dataset id and name) per class in label order, stored in the model's metadata; null
    /// names class i "class i" with id i.</summary>
    public IReadOnlyList<CocoCategory>? Categories { get; init; }

    /// <summary>Also output the head's raw outputs, <c>class_logits</c> (ΣHWA, K) and <c>box_deltas</c> (ΣHWA, 4),
    /// levels P3..P7 concatenated (for verification against <c>RetinaNet.forward</c>). Default false.</summary>
    public bool HeadOutputs { get; init; }

    /// <summary>The oldest opset of an int8 graph (13: per-channel <c>DequantizeLinear</c>).</summary>
    public const int MinInt8Opset = 13;

    /// <summary>
    /// Null (the default) for a float32 graph. Otherwise the graph is quantised statically in the QDQ format that ONNX
    /// Runtime turns into int8 kernels (<c>QLinearConv</c>, <c>QLinearAdd</c>; VNNI where the CPU has it): every
    /// convolution reads uint8 activations quantised per tensor with the calibrated ranges, int8 weights quantised
    /// symmetrically per output channel and an int32 bias; ReLU, max-pool and the residual additions stay in uint8;
    /// GroupNorm, the top-down upsampling, decoding and NMS stay float32. Measure the ranges with
    /// <see cref="Int8Calibrator.Calibrate"/> on images like those the model will see. Needs <see cref="Opset"/> &gt;= 13.
    /// </summary>
    public Int8Calibration? Int8 { get; init; }

    /// <summary>Internal: also output every quantisation point's float32 value (the graph <see cref="Int8Calibrator"/> runs).</summary>
    internal bool CalibrationOutputs { get; init; }

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentException">The opset is outside <see cref="MinOpset"/>..<see cref="MaxOpset"/> (or below
    /// <see cref="MinInt8Opset"/> with <see cref="Int8"/>), a fixed size is not positive; the message names the field and its value.</exception>
    public void Validate()
    {
        if (Opset is < MinOpset or > MaxOpset)
            throw new ArgumentException($"OnnxExportOptions.Opset = {Opset}: the exporter writes opsets {MinOpset} to {MaxOpset}", nameof(Opset));
        if (Int8 is not null && Opset < MinInt8Opset)
            throw new ArgumentException($"OnnxExportOptions.Opset = {Opset}: an int8 graph (OnnxExportOptions.Int8) needs opset {MinInt8Opset} or newer " +
                                        "(per-channel DequantizeLinear); export with opset 13..17", nameof(Opset));
        if (FixedSize is { } s && (s.Height < 1 || s.Width < 1))
            throw new ArgumentException($"OnnxExportOptions.FixedSize = {s.Height}x{s.Width}: height and width must be at least 1 pixel", nameof(FixedSize));
    }
}

/// <summary>The metadata keys an exported detector carries (ONNX <c>metadata_props</c>); the serving type requires them.</summary>
public static class OnnxDetectorMetadata
{
    /// <summary>Key whose presence marks a RetinaSharp detector; its value is <see cref="FormatValue"/>.</summary>
    public const string FormatKey = "retinasharp.format";
    /// <summary>The graph contract version: input <c>image</c> (3, H, W) float32 RGB in [0, 1]; outputs <c>boxes</c> (N, 4)
    /// XYXY input pixels, <c>scores</c> (N) float32, <c>labels</c> (N) int64 class indices, by decreasing score.</summary>
    public const string FormatValue = "retinasharp-detector-1";
    /// <summary>Key of the class list: a JSON array of {"id", "name"} objects in label order.</summary>
    public const string ClassesKey = "retinasharp.classes";
    /// <summary>Key of the model's <c>RetinaNetOptions</c> as JSON.</summary>
    public const string OptionsKey = "retinasharp.options";
    /// <summary>Key of the arithmetic: "float32", or the int8 quantisation (<see cref="Int8Calibration.ToString"/>); absent in
    /// files written before int8 export (float32).</summary>
    public const string PrecisionKey = "retinasharp.precision";
    /// <summary>Key of the input size: "dynamic" or "HxW" (pixels).</summary>
    public const string InputSizeKey = "retinasharp.input_size";
    /// <summary>The input's name.</summary>
    public const string ImageInput = "image";
    /// <summary>The outputs' names.</summary>
    public const string BoxesOutput = "boxes", ScoresOutput = "scores", LabelsOutput = "labels";
    /// <summary>The optional head outputs' names (<see cref="OnnxExportOptions.HeadOutputs"/>).</summary>
    public const string ClassLogitsOutput = "class_logits", BoxDeltasOutput = "box_deltas";
}
