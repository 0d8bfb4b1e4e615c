// Runs a detector exported by RetinaSharp.Export.OnnxExporter with ONNX Runtime (Microsoft.ML.OnnxRuntime's C# API:
// InferenceSession, SessionOptions, OrtValue). The library references only the managed API; the application picks
// the natives: Microsoft.ML.OnnxRuntime (CPU) or Microsoft.ML.OnnxRuntime.Gpu (CUDA and CPU).
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using RetinaSharp.Data;
using RetinaSharp.Export;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Serving;

/// <summary>Where <see cref="OnnxRuntimeDetector"/> runs the graph.</summary>
public enum OnnxDevice
{
    /// <summary>CUDA when the application's ONNX Runtime natives have the CUDA execution provider and a GPU works, else the CPU.</summary>
    Auto,
    /// <summary>The CPU execution provider (MLAS kernels).</summary>
    Cpu,
    /// <summary>The CUDA execution provider; an error when it is not available.</summary>
    Cuda,
}

/// <summary>Settings of <see cref="OnnxRuntimeDetector"/>.</summary>
public sealed record OnnxRuntimeDetectorOptions
{
    /// <summary>Where the graph runs. Default <see cref="OnnxDevice.Auto"/>.</summary>
    public OnnxDevice Device { get; init; } = OnnxDevice.Auto;
    /// <summary>The CUDA device ordinal (with CUDA). Default 0.</summary>
    public int CudaDeviceId { get; init; }
    /// <summary>Threads of one operator on the CPU; 0 (the default) lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreads { get; init; }
}

/// <summary>
/// A RetinaNet detector exported to ONNX (<see cref="OnnxExporter"/>), run with ONNX Runtime: <see cref="Detect(Tensor)"/>
/// returns the same <see cref="Detections"/> as <c>RetinaNet.Detect</c> (boxes in the input image's pixels). The file must carry
/// RetinaSharp's metadata (<see cref="OnnxDetectorMetadata"/>): class names, options and input size come from it.
/// Not thread-safe for concurrent <c>Detect</c> calls on one instance (ONNX Runtime sessions are, but the result
/// tensors are created per call; use one instance per thread to be safe).
/// </summary>
public sealed class OnnxRuntimeDetector : IDisposable
{
    /// <summary>ONNX Runtime's name of the CUDA execution provider.</summary>
    public const string CudaProvider = "CUDAExecutionProvider";
    /// <summary>ONNX Runtime's name of the CPU execution provider.</summary>
    public const string CpuProvider = "CPUExecutionProvider";

    private readonly InferenceSession _session;
    private readonly bool _headOutputs;

    /// <summary>Loads <paramref name="path"/> and creates the session on the device of <paramref name="options"/>.</summary>
    /// <param name="path">An .onnx file written by <see cref="OnnxExporter"/> (or <c>retina export</c>).</param>
    /// <param name="options">Device and threads; null = defaults.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DataFormatException">The file is not an ONNX model ONNX Runtime can load, or it lacks RetinaSharp's
    /// metadata (an ONNX file from elsewhere: the message says which entry is missing and how to export one).</exception>
    /// <exception cref="InvalidOperationException"><see cref="OnnxDevice.Cuda"/> was asked for but is not available (the message says why).</exception>
    public OnnxRuntimeDetector(string path, OnnxRuntimeDetectorOptions? options = null)
        : this(CheckedPath(path), null, options)
    {
    }

    /// <summary>Creates the session from an ONNX model held in memory (for example <see cref="OnnxExporter.ToBytes"/>).</summary>
    /// <param name="model">The ONNX file's bytes.</param>
    /// <param name="name">What to call the model in messages and <see cref="Path"/>.</param>
    /// <param name="options">Device and threads; null = defaults.</param>
    /// <exception cref="DataFormatException">As the file constructor.</exception>
    /// <exception cref="InvalidOperationException">As the file constructor.</exception>
    public OnnxRuntimeDetector(byte[] model, string name, OnnxRuntimeDetectorOptions? options = null)
        : this(name, model ?? throw new ArgumentNullException(nameof(model)), options)
    {
    }

    private static string CheckedPath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new DataFormatException(full, null, null, "is a folder; give the .onnx file written by retina export");
        if (!File.Exists(full)) throw new FileNotFoundException($"ONNX model '{full}' does not exist.", full);
        return full;
    }

    private OnnxRuntimeDetector(string path, byte[]? bytes, OnnxRuntimeDetectorOptions? options)
    {
        options ??= new OnnxRuntimeDetectorOptions();
        Path = path;
        (_session, ExecutionProvider, DeviceNote) = CreateSession(Path, bytes, options);
        try
        {
            var meta = _session.ModelMetadata.CustomMetadataMap;
            string Need(string key) => meta.TryGetValue(key, out var v) ? v
                : throw new DataFormatException(Path, "metadata_props", key,
                    $"is missing: this ONNX file was not written by RetinaSharp's exporter, so its inputs, outputs and class names are unknown; " +
                    "export the model with 'retina export --weights model.rsnet --onnx model.onnx'");
            var format = Need(OnnxDetectorMetadata.FormatKey);
            if (format != OnnxDetectorMetadata.FormatValue)
                throw new DataFormatException(Path, "metadata_props", OnnxDetectorMetadata.FormatKey,
                    $"is '{format}', but this RetinaSharp reads '{OnnxDetectorMetadata.FormatValue}'; export the model again with this version");
            try
            {
                ModelOptions = RetinaNetOptions.FromJson(Need(OnnxDetectorMetadata.OptionsKey));
                using var classes = JsonDocument.Parse(Need(OnnxDetectorMetadata.ClassesKey));
                Categories = [.. classes.RootElement.EnumerateArray().Select(c => new CocoCategory(c.GetProperty("id").GetInt64(), c.GetProperty("name").GetString() ?? ""))];
            }
            catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException or KeyNotFoundException or FormatException)
            {
                throw new DataFormatException(Path, "metadata_props", OnnxDetectorMetadata.OptionsKey + " / " + OnnxDetectorMetadata.ClassesKey, $"cannot be read: {e.Message}", e);
            }
            string size = Need(OnnxDetectorMetadata.InputSizeKey);
            if (size != "dynamic")
            {
                var parts = size.Split('x');
                if (parts.Length != 2 || !int.TryParse(parts[0], out int h) || !int.TryParse(parts[1], out int w))
                    throw new DataFormatException(Path, "metadata_props", OnnxDetectorMetadata.InputSizeKey, $"is '{size}': expected 'dynamic' or HxW");
                FixedSize = (h, w);
            }
            _headOutputs = _session.OutputMetadata.ContainsKey(OnnxDetectorMetadata.ClassLogitsOutput);
            Precision = meta.TryGetValue(OnnxDetectorMetadata.PrecisionKey, out var precision) ? precision : "float32";
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    private static (InferenceSession Session, string Provider, string Note) CreateSession(string path, byte[]? bytes, OnnxRuntimeDetectorOptions options)
    {
        SessionOptions Base()
        {
            var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
            if (options.IntraOpThreads > 0) so.IntraOpNumThreads = options.IntraOpThreads;
            return so;
        }
        string note = "";
        if (options.Device != OnnxDevice.Cpu)
        {
            string? why = null;
            if (!OrtEnv.Instance().GetAvailableProviders().Contains(CudaProvider))
                why = "the ONNX Runtime natives in use have no CUDA execution provider (reference Microsoft.ML.OnnxRuntime.Gpu instead of Microsoft.ML.OnnxRuntime)";
            else
            {
                var so = Base();
                try
                {
                    so.AppendExecutionProvider_CUDA(options.CudaDeviceId);
                    return (Open(path, bytes, so), CudaProvider, $"CUDA device {options.CudaDeviceId}");
                }
                catch (OnnxRuntimeException e)
                {
                    why = $"CUDA could not start: {FirstLine(e.Message)}";
                }
                finally { so.Dispose(); }
            }
            if (options.Device == OnnxDevice.Cuda) throw new InvalidOperationException($"OnnxDevice.Cuda: {why}.");
            note = $" (no CUDA: {why})";
        }
        using var cpu = Base();
        return (Open(path, bytes, cpu), CpuProvider, "CPU" + note);
    }

    private static InferenceSession Open(string path, byte[]? bytes, SessionOptions so)
    {
        try { return bytes is null ? new InferenceSession(path, so) : new InferenceSession(bytes, so); }
        catch (OnnxRuntimeException e) when (!e.Message.Contains("CUDA", StringComparison.OrdinalIgnoreCase))
        {
            throw new DataFormatException(path, null, null, $"is not an ONNX model that ONNX Runtime can load: {FirstLine(e.Message)}", e);
        }
    }

    private static string FirstLine(string s) { int n = s.IndexOf('\n'); return (n < 0 ? s : s[..n]).Trim(); }

    /// <summary>The model file (or the name given with the bytes).</summary>
    public string Path { get; }
    /// <summary>The execution provider the session runs on: <see cref="CudaProvider"/> or <see cref="CpuProvider"/>.</summary>
    public string ExecutionProvider { get; }
    /// <summary>A one-line description of the device for people ("CPU", "CUDA device 0", "CPU (no CUDA: ...)").</summary>
    public string DeviceNote { get; }
    /// <summary>The exported model's options (class count, sizes, thresholds) from the metadata.</summary>
    public RetinaNetOptions ModelOptions { get; }
    /// <summary>One category per class in label order, from the metadata.</summary>
    public IReadOnlyList<CocoCategory> Categories { get; }
    /// <summary>The graph's arithmetic from its metadata: "float32", or the int8 quantisation it was exported with
    /// (<see cref="Quantization.Int8Calibration.ToString"/>); files without the key are float32.</summary>
    public string Precision { get; } = "float32";

    /// <summary>True when the graph is quantised to int8 (<see cref="Export.OnnxExportOptions.Int8"/>).</summary>
    public bool IsInt8 => Precision.StartsWith("int8", StringComparison.Ordinal);

    /// <summary>The (height, width) in pixels the graph requires, or null for a dynamic graph that takes any size.</summary>
    public (int Height, int Width)? FixedSize { get; }

    /// <summary>
    /// Detects objects in one image, as <c>RetinaNet.Detect</c> (all steps inside the graph). The results are CPU tensors.
    /// </summary>
    /// <param name="image">(C, H, W), C = 1 or 3, floating point in [0, 1] (as <see cref="DetectionTransform.CheckImage"/>), for example
    /// from <see cref="ImageIO.ToTensor"/>.</param>
    /// <returns>Boxes (N, 4) XYXY pixels of <paramref name="image"/>, scores (N), labels (N) class indices, by decreasing score.</returns>
    /// <exception cref="ArgumentException">A bad image (shape, dtype, NaN/Inf), or a size other than <see cref="FixedSize"/>.</exception>
    public Detections Detect(Tensor image) => Run(image, null).Detections;

    /// <summary>Detects objects in each image (one graph run per image); see <see cref="Detect(Tensor)"/>.</summary>
    public IReadOnlyList<Detections> Detect(IReadOnlyList<Tensor> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("images is empty", nameof(images));
        return [.. images.Select((im, i) => Run(im, i).Detections)];
    }

    /// <summary>Detects objects in a decoded image (<see cref="ImageIO.Load(string)"/>); see <see cref="Detect(Tensor)"/>.</summary>
    public Detections Detect(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var t = ImageIO.ToTensor(image);
        return Detect(t);
    }

    /// <summary>
    /// The head's raw outputs for one image, levels P3..P7 concatenated: class logits (ΣHWA, K) and box deltas (ΣHWA, 4), as
    /// <c>RetinaNet.forward</c> on the preprocessed image. Only for files exported with <see cref="OnnxExportOptions.HeadOutputs"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The file has no head outputs.</exception>
    public (Tensor ClassLogits, Tensor BoxDeltas) HeadOutputs(Tensor image)
    {
        if (!_headOutputs) throw new InvalidOperationException($"'{Path}' was exported without head outputs (OnnxExportOptions.HeadOutputs).");
        var r = Run(image, null);
        r.Detections.Boxes.Dispose(); r.Detections.Scores.Dispose(); r.Detections.Labels.Dispose();
        return (r.ClassLogits!, r.BoxDeltas!);
    }

    private (Detections Detections, Tensor? ClassLogits, Tensor? BoxDeltas) Run(Tensor image, int? index)
    {
        var (pixels, h, w) = GraphInput(image, index ?? 0);
        if (FixedSize is { } fs && (fs.Height != h || fs.Width != w))
            throw new ArgumentException($"images[{index ?? 0}]: {h}x{w} pixels, but '{Path}' was exported for {fs.Height}x{fs.Width} images only; " +
                                        "export with --dynamic for any size", "images");
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [3, h, w]);
        var outputNames = new List<string> { OnnxDetectorMetadata.BoxesOutput, OnnxDetectorMetadata.ScoresOutput, OnnxDetectorMetadata.LabelsOutput };
        if (_headOutputs) outputNames.AddRange([OnnxDetectorMetadata.ClassLogitsOutput, OnnxDetectorMetadata.BoxDeltasOutput]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [OnnxDetectorMetadata.ImageInput], [input], outputNames);
        var boxes = ToTensor(outputs[0], 4);
        var scores = ToTensor(outputs[1], null);
        var labels = ToLongTensor(outputs[2]);
        var det = new Detections(boxes, scores, labels);
        return _headOutputs ? (det, ToTensor(outputs[3], ModelOptions.NumClasses), ToTensor(outputs[4], 4)) : (det, null, null);
    }

    /// <summary>The graph's <c>image</c> input for one image: checked (as <see cref="DetectionTransform.CheckImage"/>, finite), as
    /// float32 (3, H, W) values.</summary>
    /// <exception cref="ArgumentException">A bad image; the message names images[<paramref name="index"/>].</exception>
    internal static (float[] Pixels, long Height, long Width) GraphInput(Tensor image, int index)
    {
        using var scope = NewDisposeScope();
        var x = DetectionTransform.CheckImage(image, index);
        if (!x.isfinite().all().item<bool>())
            throw new ArgumentException($"images[{index}]: contains NaN or Inf values (shape [{string.Join(", ", image.shape)}]); expected finite values in [0, 1]", "images");
        return (x.cpu().contiguous().data<float>().ToArray(), x.shape[1], x.shape[2]);
    }

    private static Tensor ToTensor(OrtValue v, long? columns)
    {
        var span = v.GetTensorDataAsSpan<float>();
        long n = columns is { } c ? span.Length / c : span.Length;
        long[] shape = columns is { } cc ? [n, cc] : [n];
        return span.Length == 0 ? zeros(shape, dtype: ScalarType.Float32) : tensor(span.ToArray(), shape);
    }

    private static Tensor ToLongTensor(OrtValue v)
    {
        var span = v.GetTensorDataAsSpan<long>();
        return span.Length == 0 ? zeros([0], dtype: ScalarType.Int64) : tensor(span.ToArray(), [span.Length]);
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => _session.Dispose();
}
