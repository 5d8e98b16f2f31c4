import Foundation

/// Where the ImageNet pipeline samples the source image, before any DCT-domain downscaling.
struct ImageNetGeometry {
    struct Region: Equatable {
        var top: Int
        var left: Int
        var height: Int
        var width: Int
    }

    /// torchvision's `RandomResizedCrop.get_params` with scale (0.08, 1) and ratio (3/4, 4/3):
    /// up to ten tries of a region whose area is a uniform fraction of the image and whose
    /// log aspect ratio is uniform, at a uniform position; then the whole image cropped to
    /// the nearest allowed aspect ratio, centred. Python's round-half-to-even is kept.
    static func randomResizedCropRegion(height: Int, width: Int, random: inout SampleRandom,
                                        scale: ClosedRange<Double> = 0.08...1,
                                        ratio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3)) -> Region {
        let area = Double(height * width)
        let logRatio = log(ratio.lowerBound)...log(ratio.upperBound)
        for _ in 0..<10 {
            let targetArea = area * (scale.lowerBound + (scale.upperBound - scale.lowerBound) * random.nextDouble())
            let aspect = exp(logRatio.lowerBound + (logRatio.upperBound - logRatio.lowerBound) * random.nextDouble())
            let cropWidth = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let cropHeight = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if cropWidth > 0 && cropWidth <= width && cropHeight > 0 && cropHeight <= height {
                let top = random.nextInt(in: 0, height - cropHeight)
                let left = random.nextInt(in: 0, width - cropWidth)
                return Region(top: top, left: left, height: cropHeight, width: cropWidth)
            }
        }
        let imageRatio = Double(width) / Double(height)
        var cropWidth = width
        var cropHeight = height
        if imageRatio < ratio.lowerBound {
            cropHeight = Int((Double(width) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if imageRatio > ratio.upperBound {
            cropWidth = Int((Double(height) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return Region(top: (height - cropHeight) / 2, left: (width - cropWidth) / 2, height: cropHeight, width: cropWidth)
    }

    /// The training resampling: `region` stretched to `outputSize`².
    static func cropAxes(_ region: Region, outputSize: Int) -> (vertical: ResampleAxis, horizontal: ResampleAxis) {
        (ResampleAxis(origin: Double(region.top), scale: Double(region.height) / Double(outputSize),
                      lower: region.top, upper: region.top + region.height, outputCount: outputSize),
         ResampleAxis(origin: Double(region.left), scale: Double(region.width) / Double(outputSize),
                      lower: region.left, upper: region.left + region.width, outputCount: outputSize))
    }

    /// The evaluation resampling: torchvision's `Resize(resize)` (shorter side to `resize`, the
    /// longer one truncated in proportion) then `CenterCrop(crop)` (offset rounded half to even),
    /// as one resampling of the source.
    static func resizeThenCentreCropAxes(height: Int, width: Int, resize: Int, crop: Int)
        -> (vertical: ResampleAxis, horizontal: ResampleAxis) {
        let resizedHeight = width <= height ? Int(Double(resize) * Double(height) / Double(width)) : resize
        let resizedWidth = width <= height ? resize : Int(Double(resize) * Double(width) / Double(height))
        func axis(size: Int, resized: Int) -> ResampleAxis {
            let offset = Int((Double(resized - crop) / 2).rounded(.toNearestOrEven))
            let scale = Double(size) / Double(resized)
            return ResampleAxis(origin: Double(offset) * scale, scale: scale, lower: 0, upper: size, outputCount: crop)
        }
        return (axis(size: height, resized: resizedHeight), axis(size: width, resized: resizedWidth))
    }
}
