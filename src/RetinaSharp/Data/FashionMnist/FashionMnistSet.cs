// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, github.com/zalandoresearch/fashion-mnist): 28x28 grey images of
// clothing in 10 classes. RetinaSharp ships the test split (10 000 images) under data/fashion-mnist/.
using RetinaSharp.IO;

namespace RetinaSharp.Data.FashionMnist;

/// <summary>Fashion-MNIST images (28x28 bytes, 0 = background) and labels 0..9.</summary>
public sealed class FashionMnistSet
{
    /// <summary>Image side length in pixels.</summary>
    public const int Side = 28;

    /// <summary>The 10 class names, index = label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>The file name of the committed image file.</summary>
    public const string ImagesFile = "t10k-images-idx3-ubyte.gz";

    /// <summary>The file name of the committed label file.</summary>
    public const string LabelsFile = "t10k-labels-idx1-ubyte.gz";

    private readonly byte[] _pixels;
    private readonly byte[] _labels;

    private FashionMnistSet(byte[] pixels, byte[] labels)
    {
        _pixels = pixels;
        _labels = labels;
    }

    /// <summary>The number of images.</summary>
    public int Count => _labels.Length;

    /// <summary>All labels (0..9), index = image index.</summary>
    public IReadOnlyList<byte> Labels => _labels;

    /// <summary>The 28*28 pixels of image <paramref name="index"/>, row-major, 0 = background, 255 = brightest.</summary>
    public ReadOnlySpan<byte> Image(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"must be in 0..{Count - 1}");
        return _pixels.AsSpan(index * Side * Side, Side * Side);
    }

    /// <summary>The label (0..9) of image <paramref name="index"/>.</summary>
    public int Label(int index) => _labels[index];

    /// <summary>Reads the image and label files from <paramref name="folder"/> (default: <see cref="FindDataFolder"/>).</summary>
    /// <exception cref="DataFormatException">A file is missing or malformed, images are not 28x28, the counts differ, or a label is above 9.</exception>
    public static FashionMnistSet Load(string? folder = null)
    {
        folder ??= FindDataFolder();
        string imagesPath = Path.Combine(folder, ImagesFile), labelsPath = Path.Combine(folder, LabelsFile);
        var images = IdxFile.Read(imagesPath, expectedDimensions: 3);
        var labels = IdxFile.Read(labelsPath, expectedDimensions: 1);
        if (images.Dimensions[1] != Side || images.Dimensions[2] != Side)
            throw new DataFormatException(imagesPath, null, "dimensions", $"expected {Side}x{Side} images, found {images.Dimensions[1]}x{images.Dimensions[2]}");
        if (images.Dimensions[0] != labels.Dimensions[0])
            throw new DataFormatException(labelsPath, null, "count", $"{labels.Dimensions[0]} labels for {images.Dimensions[0]} images in {imagesPath}");
        for (int i = 0; i < labels.Data.Length; i++)
            if (labels.Data[i] >= ClassNames.Count)
                throw new DataFormatException(labelsPath, $"label #{i}", "label", $"{labels.Data[i]} is not a class 0..9");
        return new FashionMnistSet(images.Data, labels.Data);
    }

    /// <summary>
    /// Finds <c>data/fashion-mnist</c>: the environment variable RETINASHARP_FASHION_MNIST, else the first folder
    /// named data/fashion-mnist holding the image file in the current directory, the application's directory or
    /// one of their parents (a checkout of the repository).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No such folder was found; the message says where it looked.</exception>
    public static string FindDataFolder()
    {
        string? env = Environment.GetEnvironmentVariable("RETINASHARP_FASHION_MNIST");
        if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
        var starts = new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory };
        foreach (var start in starts)
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "data", "fashion-mnist");
                if (File.Exists(Path.Combine(candidate, ImagesFile))) return candidate;
            }
        throw new DirectoryNotFoundException(
            $"data/fashion-mnist/{ImagesFile} not found in '{starts[0]}', '{starts[1]}' or their parents; set RETINASHARP_FASHION_MNIST to the folder");
    }
}
