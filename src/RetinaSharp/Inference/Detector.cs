// The convenience entry point for the common case, "load a model, find objects in images": what torchvision's
// `model = retinanet_resnet50_fpn(weights=...); model.eval(); model([image])` does, plus the class names and the
// image decoding. The advanced API stays underneath: RetinaNet (tensors in, Detections out), ImageIO, CocoJson.
using RetinaSharp.Data;
using RetinaSharp.Modeling;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Inference;

/// <summary>
/// A trained RetinaNet ready to detect objects in images:
/// <code>
/// using var detector = Detector.Load("model.rsnet");
/// var found = detector.Detect("street.jpg");
/// foreach (var o in found) Console.WriteLine($"{o.ClassName} {o.Score:0.00} {o.Box}");
/// </code>
/// Loads our model file (model.rsnet from <c>retina train</c>, with class names) or a torchvision <c>.pth</c>, prepares
/// it for inference (eval mode, batch norm folded) and returns <see cref="DetectionResult"/>s whose boxes are XYXY pixels
/// of each input image. One instance is not thread-safe: use one per thread.
/// </summary>
public sealed class Detector : IDisposable
{
    private readonly CategoryMap _categories;
    private bool _disposed;

    /// <summary>Wraps an existing model (the advanced API) with class names; the detector owns and disposes it.</summary>
    /// <param name="model">The detector network; moved to <see cref="DetectorOptions.Device"/> and prepared for inference (<see cref="RetinaNet.PrepareForInference"/>).</param>
    /// <param name="categories">One name and id per class in class-index order [default: "class i" with id i].</param>
    /// <param name="options">Thresholds, sizes, precision, device [default: the model's settings on the CPU].</param>
    /// <exception cref="ArgumentException">An option is out of range, the device is not available (the message says which libtorch
    /// package gives CUDA), or the categories do not number the model's classes.</exception>
    public Detector(RetinaNet model, IReadOnlyList<CocoCategory>? categories = null, DetectorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        Options = options ?? new DetectorOptions();
        if (Options.BatchSize < 1) throw new ArgumentException($"DetectorOptions.BatchSize {Options.BatchSize}: must be at least 1.", nameof(options));
        var mo = model.Options;
        mo = mo with
        {
            ScoreThreshold = Options.ScoreThreshold ?? mo.ScoreThreshold,
            DetectionsPerImage = Options.MaxDetections ?? mo.DetectionsPerImage,
            MinSize = Options.MinSize ?? mo.MinSize,
            MaxSize = Options.MaxSize ?? Math.Max(mo.MaxSize, Options.MinSize ?? mo.MinSize),
        };
        model.Reconfigure(mo);
        var cats = categories ?? Enumerable.Range(0, mo.NumClasses).Select(i => new CocoCategory(i, $"class {i}")).ToList();
        if (cats.Count != mo.NumClasses)
            throw new ArgumentException($"{cats.Count} categories for a model with {mo.NumClasses} classes; give one per class, in class-index order", nameof(categories));
        _categories = new CategoryMap(cats);
        Device = ComputeDevice.Resolve(Options.Device, "DetectorOptions.Device");
        model.to(Device);
        model.PrepareForInference(foldBatchNorm: true, bfloat16: Options.BFloat16);
        Model = model;
    }

    /// <summary>
    /// Loads a model file: model.rsnet (written by <c>retina train</c> or <see cref="RetinaNetCheckpoint.Save(RetinaNet, string, IReadOnlyList{CocoCategory})"/>:
    /// weights, configuration and class names) or a torchvision RetinaNet <c>.pth</c> state_dict (no names: "class i").
    /// </summary>
    /// <param name="modelPath">The model file.</param>
    /// <param name="options">Thresholds, sizes, precision, device, class names [default: the model's settings on the CPU].</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="IO.DataFormatException">Not a model file (a training checkpoint gets the name of the model file to use instead), truncated, or keys/shapes that do not fit.</exception>
    /// <exception cref="ArgumentException">An option is out of range or the device is not available.</exception>
    /// <exception cref="InvalidOperationException">TorchSharp's native library cannot load (the message says why and what fixes it).</exception>
    public static Detector Load(string modelPath, DetectorOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        TorchNative.EnsureLoaded();
        string full = Path.GetFullPath(modelPath);
        var model = RetinaNetCheckpoint.Load(full);
        try
        {
            var stored = RetinaNetCheckpoint.ReadCategories(full);
            var categories = options?.Categories ?? (stored != null && stored.Count == model.Options.NumClasses ? stored : null);
            return new Detector(model, categories, options);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The network (advanced use: tensors in, <see cref="Detections"/> out). Prepared for inference: do not train it.</summary>
    public RetinaNet Model { get; }

    /// <summary>The settings this detector was made with.</summary>
    public DetectorOptions Options { get; }

    /// <summary>Where the network runs.</summary>
    public Device Device { get; }

    /// <summary>The classes, in class-index order (name and category id).</summary>
    public IReadOnlyList<CocoCategory> Categories => _categories.Categories;

    /// <summary>Detects objects in an image file (JPEG, PNG, WebP, BMP, GIF; EXIF orientation applied).</summary>
    /// <param name="imagePath">The image file.</param>
    /// <exception cref="IO.DataFormatException">The file is missing or not a readable image; the message names it.</exception>
    public DetectionResult Detect(string imagePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagePath);
        return DetectImages([(ImageIO.Load(imagePath), Path.GetFullPath(imagePath))])[0];
    }

    /// <summary>Detects objects in an encoded image read from a stream (read to its end, left open).</summary>
    /// <param name="imageStream">JPEG, PNG, WebP, BMP or GIF bytes.</param>
    /// <exception cref="IO.DataFormatException">Not a readable image.</exception>
    public DetectionResult Detect(Stream imageStream) => DetectImages([(ImageIO.Load(imageStream), null)])[0];

    /// <summary>Detects objects in a SkiaSharp bitmap (any colour type; alpha ignored).</summary>
    /// <param name="bitmap">The image (not modified).</param>
    public DetectionResult Detect(SKBitmap bitmap) => DetectImages([(ImageIO.FromBitmap(bitmap), null)])[0];

    /// <summary>Detects objects in a decoded RGB image.</summary>
    /// <param name="image">The image.</param>
    public DetectionResult Detect(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return DetectImages([(image, null)])[0];
    }

    /// <summary>Detects objects in several image files, <see cref="DetectorOptions.BatchSize"/> per forward pass.</summary>
    /// <param name="imagePaths">The image files.</param>
    /// <returns>One result per file, in order.</returns>
    /// <exception cref="IO.DataFormatException">A file is missing or not a readable image (nothing is returned; the message names it).</exception>
    public IReadOnlyList<DetectionResult> Detect(IEnumerable<string> imagePaths)
    {
        ArgumentNullException.ThrowIfNull(imagePaths);
        var paths = imagePaths.ToList();
        var results = new List<DetectionResult>(paths.Count);
        for (int start = 0; start < paths.Count; start += Options.BatchSize)
            results.AddRange(DetectImages(paths.Skip(start).Take(Options.BatchSize).Select(p => (ImageIO.Load(p), (string?)Path.GetFullPath(p))).ToList()));
        return results;
    }

    /// <summary>Detects objects in several decoded images, <see cref="DetectorOptions.BatchSize"/> per forward pass.</summary>
    /// <param name="images">The images.</param>
    /// <returns>One result per image, in order.</returns>
    public IReadOnlyList<DetectionResult> Detect(IEnumerable<RgbImage> images)
    {
        ArgumentNullException.ThrowIfNull(images);
        var list = images.ToList();
        var results = new List<DetectionResult>(list.Count);
        for (int start = 0; start < list.Count; start += Options.BatchSize)
            results.AddRange(DetectImages(list.Skip(start).Take(Options.BatchSize).Select(i => (i, (string?)null)).ToList()));
        return results;
    }

    private List<DetectionResult> DetectImages(IReadOnlyList<(RgbImage Image, string? Source)> images)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = NewDisposeScope();
        var found = Model.DetectIndependently(images.Select(i => ImageIO.ToTensor(i.Image)).ToList());
        var results = new List<DetectionResult>(images.Count);
        for (int i = 0; i < images.Count; i++)
            results.Add(new DetectionResult(ToObjects(found[i]), images[i].Image, images[i].Source));
        return results;
    }

    private List<DetectedObject> ToObjects(Detections d)
    {
        var objects = new List<DetectedObject>((int)d.Count);
        if (d.Count == 0) return objects;
        var boxes = d.Boxes.cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var scores = d.Scores.cpu().to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var labels = d.Labels.cpu().to(ScalarType.Int64).contiguous().data<long>().ToArray();
        for (int i = 0; i < scores.Length; i++)
        {
            int k = (int)labels[i];
            objects.Add(new DetectedObject(_categories.Name(k), _categories.ToCategoryId(k), k, scores[i],
                new BoxXyxy(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3])));
        }
        return objects;
    }

    /// <summary>Releases the network's native memory.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Model.Dispose();
    }
}
